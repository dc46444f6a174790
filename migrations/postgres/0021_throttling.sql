-- Throttling as a tenant switches it on (PUT /_emulator/tenants/{tid}/limits): the tenant's
-- limits (NULL: off), cached with the tenant, so a tenant without limits costs no statement;
-- and the request counters of the current windows, one row per counter, its window moving on
-- with the tenant's clock.
ALTER TABLE tenants ADD COLUMN limits JSONB;

CREATE TABLE throttle_counts (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    counter TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, counter)
);
