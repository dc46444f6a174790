-- Compliance at scale (issue 12). A device's verdict and due time move to a narrow table of
-- their own: an evaluation that changes a verdict rewrites a row of five columns and its three
-- indexes, not the device's wide row and its eight. Reads see the device with its verdict
-- through device_view, under the column names they had.
--
-- Which evaluation may write a verdict is decided by the queue, not by columns on the verdict:
-- every evaluation is of queued devices, and it writes a device's results only while the device
-- has a queue entry from a change it saw (gen <= its number), holding that entry's lock. An entry
-- already taken off means an evaluation that saw every change of the device up to it has written
-- (or found nothing to write), so compliance_input_version and compliance_evaluated_at go.
CREATE TABLE device_compliance (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    compliance_state TEXT NOT NULL,
    compliance_grace_expires_at TIMESTAMPTZ,
    -- When time alone may next change the device's compliance (grace deadline, check-in
    -- threshold, a connector turning unresponsive, an action falling due).
    compliance_due_at TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, device_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES managed_devices (tenant_id, id) ON DELETE CASCADE
);
INSERT INTO device_compliance (tenant_id, device_id, compliance_state, compliance_grace_expires_at, compliance_due_at)
SELECT tenant_id, id, compliance_state, compliance_grace_expires_at, compliance_due_at FROM managed_devices;
CREATE INDEX device_compliance_state ON device_compliance (tenant_id, (compliance_state COLLATE "C"), device_id);
CREATE INDEX device_compliance_due ON device_compliance (tenant_id, compliance_due_at);

DROP INDEX managed_devices_compliance;
DROP INDEX managed_devices_compliance_due;
ALTER TABLE managed_devices
    DROP COLUMN compliance_state,
    DROP COLUMN compliance_grace_expires_at,
    DROP COLUMN compliance_due_at,
    DROP COLUMN compliance_input_version,
    DROP COLUMN compliance_evaluated_at;

CREATE VIEW device_view AS
SELECT d.*, c.compliance_state, c.compliance_grace_expires_at, c.compliance_due_at
FROM managed_devices d JOIN device_compliance c ON c.tenant_id = d.tenant_id AND c.device_id = d.id;

-- Keys that cost evaluation a lock on another table for every row it writes: each policy state
-- inserted took a key-share lock on its device's row (a write to the wide row, and a wait on any
-- change holding it), each event and message one on the tenant's row (shared by every
-- transaction of the tenant, so a multixact). Deleting a device deletes its states and fired
-- actions itself, and a tenant's reset and deletion delete its rows table by table; the queue
-- keeps an evaluation from writing for a device deleted meanwhile (see above).
ALTER TABLE device_policy_states DROP CONSTRAINT device_policy_states_tenant_id_device_id_fkey;
ALTER TABLE fired_actions DROP CONSTRAINT fired_actions_tenant_id_device_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_tenant_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT notifications_tenant_id_fkey;
