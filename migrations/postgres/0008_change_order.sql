-- One write path (issue 11). Every change takes its tenant's row first and bumps queue_version:
-- that number orders the tenant's changes. A queued device carries the number of the last change
-- that queued it (gen); an evaluation reads the committed number before its inputs, takes off
-- the queue only entries at or below it, and stores its verdict only over one computed from
-- older inputs (compliance_input_version) or, from the same inputs, at an earlier tenant time
-- (compliance_evaluated_at).
ALTER TABLE reevaluation_queue ADD COLUMN gen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE managed_devices ADD COLUMN compliance_input_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE managed_devices ADD COLUMN compliance_evaluated_at TIMESTAMPTZ;
-- A queue entry's key to its device made every enqueue take a share lock on each device it
-- queues, at the end of the statement, after it had taken the entries: the opposite order from
-- evaluations (devices, then entries), and a deadlock. Deleting a device deletes its entry
-- itself instead.
ALTER TABLE reevaluation_queue DROP CONSTRAINT reevaluation_queue_tenant_id_device_id_fkey;
