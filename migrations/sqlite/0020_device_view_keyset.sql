-- Keyset pages of device_view (`id > $after ORDER BY id`) walked the verdicts from the tenant's
-- first device: the bound is on the devices' side of the join, and PostgreSQL does not carry an
-- inequality across it, so each page of a merge join scanned device_compliance up to the page
-- (measured: 1 s a page half-way through 1,000,000 devices). The view shows the verdict's key
-- too, so that pages bound both sides.
DROP VIEW device_view;
CREATE VIEW device_view AS
SELECT d.*, c.compliance_state, c.compliance_grace_expires_at, c.compliance_due_at, c.partner_threat_state,
    c.device_id AS verdict_device_id
FROM managed_devices d JOIN device_compliance c ON c.tenant_id = d.tenant_id AND c.device_id = d.id;
