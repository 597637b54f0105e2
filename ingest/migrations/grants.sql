-- Grants on ingest's tables (0001, 0010), applied by migrate at the end of every run after it has
-- revoked everything from the service roles: what is not written here, no service may do.
-- A new table gets its lines here (or in the grants.sql of the room that owns it): see
-- docs/operations.md, "Database roles and grants".

-- ingest: stores each reading once (the unique index readings_dedupe decides; on TimescaleDB the
-- reading_keys table: 0090, ingest/timescale.py), keeps gateway status current, dead-letters what
-- fails the contract or the device's enrolment. Devices are created and described only by
-- enrolment (0075/0076): ingest records when a device was seen and what its gateway reports.
GRANT SELECT, INSERT ON readings, dead_letters TO rpmflow_ingest;
DO $$
BEGIN
    IF to_regclass('reading_keys') IS NOT NULL THEN
        GRANT SELECT, INSERT ON reading_keys TO rpmflow_ingest;
        GRANT SELECT ON reading_keys TO rpmflow_reporting;
    END IF;
END $$;
GRANT SELECT, INSERT, UPDATE ON gateway_status TO rpmflow_ingest;
GRANT SELECT ON devices TO rpmflow_ingest;
GRANT UPDATE (first_seen_at, last_seen_at, reported) ON devices TO rpmflow_ingest;

-- triage reads what ingest stored.
GRANT SELECT ON readings, devices, gateway_status TO rpmflow_triage;

-- dashboard: shows readings, devices, gateway status and dead letters; registers a device and
-- attaches a device's unassigned readings when an admin assigns it from a past date.
GRANT SELECT ON readings, devices, gateway_status, dead_letters TO rpmflow_dashboard;
-- readings_daily (0061): a view on plain PostgreSQL, a continuous aggregate on TimescaleDB.
GRANT SELECT ON readings_daily TO rpmflow_dashboard, rpmflow_reporting;
GRANT INSERT, UPDATE ON devices TO rpmflow_dashboard;
-- TimescaleDB 2.28.3 refuses every column-level GRANT on a hypertable with compression enabled:
-- there the dashboard gets UPDATE on the table, and readings_only_patient_changes (0062) keeps
-- every column but patient_id unchanged for it.
DO $$
DECLARE
    compressed boolean := false;
BEGIN
    IF to_regclass('timescaledb_information.hypertables') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables'
                ' WHERE hypertable_name = ''readings'' AND compression_enabled)' INTO compressed;
    END IF;
    IF compressed THEN
        GRANT UPDATE ON readings TO rpmflow_dashboard;
    ELSE
        GRANT UPDATE (patient_id) ON readings TO rpmflow_dashboard;
    END IF;
END $$;

-- reporting: read-only.
GRANT SELECT ON readings, devices, gateway_status, dead_letters TO rpmflow_reporting;
