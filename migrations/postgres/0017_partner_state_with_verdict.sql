-- Compliance at scale (issue 12). A device's partnerReportedThreatState moves beside its
-- verdict: evaluation derives it from the device's reports (the newest from a connector that is
-- not deprovisioned) and writes it, when it changed, in the same narrow row as the verdict. A
-- batch of threat reports thus rewrites a row of six columns per device, not the device's wide
-- row (about 2 KB with its properties) and its WAL. The narrow rows leave room in their pages
-- (fillfactor 70, as managed_devices and threat_reports do) so that a change of the unindexed
-- threat state is a heap-only update, with no new index entries.
ALTER TABLE device_compliance ADD COLUMN partner_threat_state TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE device_compliance SET (fillfactor = 70);
UPDATE device_compliance SET partner_threat_state = d.partner_threat_state
FROM managed_devices d WHERE d.tenant_id = device_compliance.tenant_id AND d.id = device_compliance.device_id;

DROP VIEW device_view;
ALTER TABLE managed_devices DROP COLUMN partner_threat_state;
CREATE VIEW device_view AS
SELECT d.*, c.compliance_state, c.compliance_grace_expires_at, c.compliance_due_at, c.partner_threat_state
FROM managed_devices d JOIN device_compliance c ON c.tenant_id = d.tenant_id AND c.device_id = d.id;
