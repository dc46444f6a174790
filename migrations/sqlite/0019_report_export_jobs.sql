-- Report export jobs (deviceManagement/reports/exportJobs). A job is created notStarted; the
-- worker runs it on the tenant's clock (inProgress, then completed with its zip), taking a
-- snapshot of the data when it runs. The zip is kept on the row until the job is deleted with
-- its tenant; it is served at the job's url, with the job's token, until it expires.
CREATE TABLE report_export_jobs (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    report_name TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    completed_at TEXT,
    expires_at TEXT,
    token TEXT,
    content BLOB,
    PRIMARY KEY (tenant_id, id)
);
-- The worker's probe for jobs to run.
CREATE INDEX report_export_jobs_pending ON report_export_jobs (tenant_id, status, requested_at);
