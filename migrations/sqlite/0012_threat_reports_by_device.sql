-- Threat reports are found by device (the key's prefix), one connector's only when the
-- connector changes. Without statistics (a fresh database, or one autovacuum has not reached),
-- PostgreSQL preferred this index for a report of one device and connector, scanning the
-- connector's reports of the whole tenant for each device of an ingest batch.
DROP INDEX threat_reports_connector;
