-- What replicas cache of a tenant (its row, with the clock offset, and its role definitions and
-- assignments) is valid while cache_version is unchanged: every write to any of it bumps the
-- column in its own transaction, and each request compares it with one primary-key read.
ALTER TABLE tenants ADD COLUMN cache_version INTEGER NOT NULL DEFAULT 0;
