//! Which column, or SQL expression over a row, each filterable or sortable property of a listed
//! collection reads, per backend where they differ (the managed devices' JSON-held properties).
//! A property of the collection's type without a column here exists but cannot be used in
//! `$filter`/`$orderby`: the known properties make that error say so rather than "could not
//! find".

use std::sync::OnceLock;

use super::filter_sql::{ColType, Column, Dialect, Entity};
use crate::schema::directory::{GROUP, USER};
use crate::schema::managed_device::MANAGED_DEVICE;
use crate::schema::StructType;

/// The entity of a Graph type whose `$filter`/`$orderby` columns are `columns`, and whose other
/// properties (from the schema) exist but cannot be filtered.
fn graph_entity(type_name: &'static str, columns: &'static [Column], schema: &'static StructType) -> Entity {
    let known: Vec<&'static str> = schema.props.iter().map(|p| p.name).collect();
    Entity {
        type_name,
        columns,
        known_properties: Box::leak(known.into_boxed_slice()),
    }
}

const fn column(property: &'static str, sql: &'static str, ty: ColType, filterable: bool, sortable: bool) -> Column {
    let case_insensitive = matches!(ty, ColType::Text);
    Column {
        property,
        sql,
        ty,
        filterable,
        sortable,
        case_insensitive,
    }
}

/// The emulator's tenants (control plane).
pub(crate) static TENANTS: Entity = Entity {
    type_name: "emulator.tenant",
    columns: &[
        column("id", "id", ColType::Text, true, true),
        column("displayName", "display_name", ColType::Text, true, true),
        column("createdDateTime", "created_at", ColType::Timestamp, true, true),
    ],
    known_properties: &["clock", "tokenEndpoint", "bootstrapApp"],
};

/// `microsoft.graph.user`.
pub(crate) fn users() -> &'static Entity {
    static COLUMNS: &[Column] = &[
        column("id", "id", ColType::Text, true, true),
        column("userPrincipalName", "user_principal_name", ColType::Text, true, true),
        column("displayName", "display_name", ColType::Text, true, true),
        column("mail", "mail", ColType::Text, true, true),
        column("accountEnabled", "account_enabled", ColType::Bool, true, false),
        column("createdDateTime", "created_at", ColType::Timestamp, true, true),
    ];
    static ENTITY: OnceLock<Entity> = OnceLock::new();
    ENTITY.get_or_init(|| graph_entity("microsoft.graph.user", COLUMNS, &USER))
}

/// `microsoft.graph.group`.
pub(crate) fn groups() -> &'static Entity {
    static COLUMNS: &[Column] = &[
        column("id", "id", ColType::Text, true, true),
        column("displayName", "display_name", ColType::Text, true, true),
        column("mailNickname", "mail_nickname", ColType::Text, true, true),
        column("securityEnabled", "security_enabled", ColType::Bool, true, false),
        column("mailEnabled", "mail_enabled", ColType::Bool, true, false),
        column("createdDateTime", "created_at", ColType::Timestamp, true, true),
    ];
    static ENTITY: OnceLock<Entity> = OnceLock::new();
    ENTITY.get_or_init(|| graph_entity("microsoft.graph.group", COLUMNS, &GROUP))
}

const COMPLIANCE_STATES: &[&str] = &[
    "unknown",
    "compliant",
    "noncompliant",
    "conflict",
    "error",
    "inGracePeriod",
    "configManager",
];
const MANAGEMENT_STATES: &[&str] = &[
    "managed",
    "retirePending",
    "retireFailed",
    "wipePending",
    "wipeFailed",
    "unhealthy",
    "deletePending",
    "retireIssued",
    "wipeIssued",
    "wipeCanceled",
    "retireCanceled",
    "discovered",
    "unknownFutureValue",
];

/// `microsoft.graph.managedDevice`. The backends differ only in how SQL reads the properties
/// held in the `properties` JSON (`$json` opens the expression, the property name and `')`
/// close it) and in the far-future grace deadline Graph shows for a device not in a grace
/// period (`$no_grace`, a timestamp literal of the backend).
macro_rules! device_columns {
    ($json:literal, $no_grace:literal) => {
        &[
            column("id", "id", ColType::Text, false, true),
            column("azureADDeviceId", "azure_ad_device_id", ColType::Text, true, false),
            column(
                "complianceGracePeriodExpirationDateTime",
                concat!("COALESCE(compliance_grace_expires_at, ", $no_grace, ")"),
                ColType::Timestamp,
                true,
                true,
            ),
            column(
                "complianceState",
                "compliance_state",
                ColType::Enum(COMPLIANCE_STATES),
                true,
                true,
            ),
            column("deviceName", "device_name", ColType::Text, true, true),
            column("emailAddress", "email_address", ColType::Text, true, true),
            column("enrolledDateTime", "enrolled_at", ColType::Timestamp, true, true),
            column("imei", "imei", ColType::Text, true, true),
            column("lastSyncDateTime", "last_sync_at", ColType::Timestamp, true, true),
            column(
                "managementState",
                "management_state",
                ColType::Enum(MANAGEMENT_STATES),
                true,
                true,
            ),
            column("manufacturer", "manufacturer", ColType::Text, true, true),
            column("model", "model", ColType::Text, true, true),
            column("operatingSystem", "operating_system", ColType::Text, true, true),
            column("osVersion", "os_version", ColType::Text, true, true),
            column("phoneNumber", "phone_number", ColType::Text, true, true),
            column("serialNumber", "serial_number", ColType::Text, true, true),
            column("userPrincipalName", "user_principal_name", ColType::Text, true, true),
            column("userDisplayName", "user_display_name", ColType::Text, false, true),
            column(
                "deviceCategoryDisplayName",
                concat!($json, "deviceCategoryDisplayName')"),
                ColType::Text,
                true,
                true,
            ),
            column(
                "exchangeAccessState",
                concat!($json, "exchangeAccessState')"),
                ColType::Text,
                true,
                true,
            ),
            column("jailBroken", concat!($json, "jailBroken')"), ColType::Text, true, true),
            column(
                "managementAgent",
                concat!($json, "managementAgent')"),
                ColType::Text,
                true,
                true,
            ),
        ]
    };
}

static SQLITE_DEVICE_COLUMNS: &[Column] =
    device_columns!("json_extract(properties, '$.", "'9999-12-31T23:59:59+00:00'");
static POSTGRES_DEVICE_COLUMNS: &[Column] = device_columns!("(properties ->> '", "TIMESTAMPTZ '9999-12-31T23:59:59Z'");

pub(crate) fn devices(dialect: Dialect) -> &'static Entity {
    static SQLITE: OnceLock<Entity> = OnceLock::new();
    static POSTGRES: OnceLock<Entity> = OnceLock::new();
    match dialect {
        Dialect::Sqlite => {
            SQLITE.get_or_init(|| graph_entity("microsoft.graph.managedDevice", SQLITE_DEVICE_COLUMNS, &MANAGED_DEVICE))
        }
        Dialect::Postgres => POSTGRES.get_or_init(|| {
            graph_entity(
                "microsoft.graph.managedDevice",
                POSTGRES_DEVICE_COLUMNS,
                &MANAGED_DEVICE,
            )
        }),
    }
}

/// The partner API's device (`/partner/v1/devices`).
pub(crate) static PARTNER_DEVICES: Entity = Entity {
    type_name: "partner.device",
    columns: &[
        column("id", "id", ColType::Text, true, false),
        column("platform", "platform", ColType::Text, true, false),
        column("operatingSystem", "operating_system", ColType::Text, true, false),
        column("lastSyncDateTime", "last_sync_at", ColType::Timestamp, true, false),
    ],
    known_properties: &[
        "azureADDeviceId",
        "deviceName",
        "osVersion",
        "ownerType",
        "userPrincipalName",
        "enrolledDateTime",
        "partnerReportedThreatState",
    ],
};
