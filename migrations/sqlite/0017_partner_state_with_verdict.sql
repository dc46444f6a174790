-- Compliance at scale (issue 12). A device's partnerReportedThreatState moves beside its
-- verdict: evaluation derives it from the device's reports (the newest from a connector that is
-- not deprovisioned) and writes it, when it changed, in the same narrow row as the verdict.
ALTER TABLE device_compliance ADD COLUMN partner_threat_state TEXT NOT NULL DEFAULT 'unknown';
UPDATE device_compliance SET partner_threat_state = (SELECT d.partner_threat_state FROM managed_devices d
    WHERE d.tenant_id = device_compliance.tenant_id AND d.id = device_compliance.device_id);

DROP VIEW device_view;
ALTER TABLE managed_devices DROP COLUMN partner_threat_state;
CREATE VIEW device_view AS
SELECT d.*, c.compliance_state, c.compliance_grace_expires_at, c.compliance_due_at, c.partner_threat_state
FROM managed_devices d JOIN device_compliance c ON c.tenant_id = d.tenant_id AND c.device_id = d.id;
