-- Tamper-evident audit trail (HIPAA §164.312(b)/(c), DOMAIN H11). Rows are hash-chained by
-- triage/clinical/audit.py: hash = sha256(prev_hash || canonical row content); inserts are serialised by a
-- transaction-scoped advisory lock plus a row lock on the single chain-head row. The table is
-- append-only: no service role may UPDATE/DELETE/TRUNCATE (grants.sql), and a trigger refuses those
-- for everyone (even the owner must first disable the trigger, which verify_chain then exposes).

CREATE TABLE audit_log (
    seq         bigint PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    patient_id  bigint,
    detail      jsonb NOT NULL,
    source_ip   text,
    prev_hash   text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash        text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_patient ON audit_log (patient_id, at);

CREATE TABLE audit_chain_head (
    id        integer PRIMARY KEY CHECK (id = 1),
    last_seq  bigint NOT NULL,
    last_hash text NOT NULL
);
INSERT INTO audit_chain_head VALUES (1, 0, repeat('0', 64));

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Every insert must extend the chain head exactly by one link; the head moves with it.
-- SECURITY DEFINER: a service role may not UPDATE the head itself, only through this link.
CREATE FUNCTION audit_log_link() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
DECLARE
    h record;
BEGIN
    SELECT last_seq, last_hash INTO h FROM audit_chain_head WHERE id = 1 FOR UPDATE;
    IF NEW.seq <> h.last_seq + 1 OR NEW.prev_hash <> h.last_hash THEN
        RAISE EXCEPTION 'audit row % does not extend the chain head (seq %)', NEW.seq, h.last_seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    UPDATE audit_chain_head SET last_seq = NEW.seq, last_hash = NEW.hash WHERE id = 1;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_link BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_link();

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_chain_head FROM PUBLIC;
-- The service roles' rights (audit_log: SELECT and INSERT only): triage/migrations/grants.sql.
