-- A tenant's re-evaluation queue has work when queue_version (bumped by every enqueue) is ahead
-- of queue_seen (the version a worker pass last drained): the idle check reads the tenant row
-- instead of probing a queue index full of entries deleted since the last vacuum.
ALTER TABLE tenants ADD COLUMN queue_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN queue_seen BIGINT NOT NULL DEFAULT 0;
