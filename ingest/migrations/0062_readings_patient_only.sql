-- The dashboard may change a reading's patient_id (attaching an unassigned device's readings)
-- and nothing else. A column grant says so on plain PostgreSQL; on TimescaleDB with compression
-- a column grant is refused (2.28.3), so grants.sql grants UPDATE on the table there and this
-- trigger keeps the other columns as they were for it (the other services may not UPDATE at all).
CREATE FUNCTION readings_only_patient_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'patient_id') IS DISTINCT FROM (to_jsonb(OLD) - 'patient_id')
       AND current_user = 'rpmflow_dashboard' THEN
        RAISE EXCEPTION 'only patient_id of a reading may change (role %)', current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER readings_only_patient_changes BEFORE UPDATE ON readings
    FOR EACH ROW EXECUTE FUNCTION readings_only_patient_changes();
