-- App protection (MAM): the iOS and Android app protection policies, the protected apps users
-- register on their devices (enrolled or not), and the partners' reports for devices known only
-- by their Entra device id. A policy's assignments and targeted apps are few and always read
-- with it: JSON documents on its row.
CREATE TABLE app_protection_policies (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    platform TEXT NOT NULL,
    properties JSONB NOT NULL,
    assignments JSONB NOT NULL,
    apps JSONB NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_modified_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- One registration per user, device and app. What the app was last told (verdict, the policies
-- that applied) and its selective wipes (operations) are kept on the row.
CREATE TABLE app_registrations (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    azure_ad_device_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    app_id TEXT NOT NULL,
    application_version TEXT NOT NULL,
    management_sdk_version TEXT NOT NULL,
    platform_version TEXT NOT NULL,
    device_name TEXT NOT NULL,
    device_model TEXT,
    device_manufacturer TEXT,
    managed_device_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    last_sync_at TIMESTAMPTZ,
    verdict TEXT,
    applied_policy_ids JSONB NOT NULL,
    operations JSONB NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX app_registrations_key ON app_registrations (tenant_id, user_id, azure_ad_device_id, (lower(app_id)));
CREATE INDEX app_registrations_device ON app_registrations (tenant_id, azure_ad_device_id);

-- Partners' reports for devices that are not enrolled, by Entra device id: the newest of each
-- connector, as threat_reports keeps them for managed devices.
CREATE TABLE app_threat_reports (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connector_id TEXT NOT NULL,
    azure_ad_device_id TEXT NOT NULL,
    state TEXT NOT NULL,
    reported_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, azure_ad_device_id, connector_id)
);
