-- Directory (users, groups, members), managed devices and their app inventory.
-- Expression indexes match the SQL the OData layer emits for case-insensitive columns.

CREATE TABLE users (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    user_principal_name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    mail TEXT,
    account_enabled INTEGER NOT NULL,
    password_hash TEXT,
    created_at TEXT NOT NULL,
    properties TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_upn ON users (tenant_id, lower(user_principal_name));
CREATE INDEX users_display_name ON users (tenant_id, lower(display_name));

CREATE TABLE groups (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    mail_nickname TEXT NOT NULL,
    security_enabled INTEGER NOT NULL,
    mail_enabled INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    properties TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX groups_display_name ON groups (tenant_id, lower(display_name));

CREATE TABLE group_members (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_kind TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, member_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_members_member ON group_members (tenant_id, member_id);

CREATE TABLE managed_devices (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    device_name TEXT NOT NULL,
    operating_system TEXT NOT NULL,
    os_version TEXT NOT NULL,
    platform TEXT NOT NULL,
    owner_type TEXT NOT NULL,
    user_id TEXT,
    user_principal_name TEXT,
    user_display_name TEXT,
    email_address TEXT,
    azure_ad_device_id TEXT NOT NULL,
    model TEXT,
    manufacturer TEXT,
    serial_number TEXT,
    imei TEXT,
    phone_number TEXT,
    enrolled_at TEXT NOT NULL,
    last_sync_at TEXT NOT NULL,
    compliance_state TEXT NOT NULL,
    compliance_grace_expires_at TEXT,
    partner_threat_state TEXT NOT NULL,
    management_state TEXT NOT NULL,
    properties TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX managed_devices_entra_id ON managed_devices (tenant_id, azure_ad_device_id);
CREATE INDEX managed_devices_os ON managed_devices (tenant_id, lower(operating_system), id);
CREATE INDEX managed_devices_name ON managed_devices (tenant_id, lower(device_name));
CREATE INDEX managed_devices_user ON managed_devices (tenant_id, user_id);
CREATE INDEX managed_devices_upn ON managed_devices (tenant_id, lower(user_principal_name));
CREATE INDEX managed_devices_compliance ON managed_devices (tenant_id, compliance_state, id);
CREATE INDEX managed_devices_last_sync ON managed_devices (tenant_id, last_sync_at);

CREATE TABLE device_apps (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    bundle_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    version TEXT NOT NULL,
    managed INTEGER NOT NULL,
    size_in_bytes INTEGER NOT NULL,
    publisher TEXT,
    detected_app_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, bundle_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES managed_devices (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX device_apps_detected ON device_apps (tenant_id, detected_app_id);
