-- Directory (users, groups, members), managed devices and their app inventory.
-- Expression indexes match the SQL the OData layer emits (lower(x COLLATE "C") for
-- case-insensitive columns, x COLLATE "C" for the others), so that filters use them.

CREATE TABLE users (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    user_principal_name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    mail TEXT,
    account_enabled BOOLEAN NOT NULL,
    password_hash TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    properties JSONB NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_upn ON users (tenant_id, lower(user_principal_name COLLATE "C"));
CREATE INDEX users_display_name ON users (tenant_id, lower(display_name COLLATE "C"));

CREATE TABLE groups (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    mail_nickname TEXT NOT NULL,
    security_enabled BOOLEAN NOT NULL,
    mail_enabled BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    properties JSONB NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX groups_display_name ON groups (tenant_id, lower(display_name COLLATE "C"));

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
    enrolled_at TIMESTAMPTZ NOT NULL,
    last_sync_at TIMESTAMPTZ NOT NULL,
    compliance_state TEXT NOT NULL,
    compliance_grace_expires_at TIMESTAMPTZ,
    partner_threat_state TEXT NOT NULL,
    management_state TEXT NOT NULL,
    properties JSONB NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX managed_devices_entra_id ON managed_devices (tenant_id, azure_ad_device_id);
-- INCLUDE lets a count of a filter on the operating system be an index-only scan.
CREATE INDEX managed_devices_os ON managed_devices (tenant_id, lower(operating_system COLLATE "C"), id) INCLUDE (operating_system);
CREATE INDEX managed_devices_name ON managed_devices (tenant_id, lower(device_name COLLATE "C"));
CREATE INDEX managed_devices_user ON managed_devices (tenant_id, user_id);
CREATE INDEX managed_devices_upn ON managed_devices (tenant_id, lower(user_principal_name COLLATE "C"));
CREATE INDEX managed_devices_compliance ON managed_devices (tenant_id, (compliance_state COLLATE "C"), id);
CREATE INDEX managed_devices_last_sync ON managed_devices (tenant_id, last_sync_at);

CREATE TABLE device_apps (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    bundle_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    version TEXT NOT NULL,
    managed BOOLEAN NOT NULL,
    size_in_bytes BIGINT NOT NULL,
    publisher TEXT,
    detected_app_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, bundle_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES managed_devices (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX device_apps_detected ON device_apps (tenant_id, detected_app_id);
