-- Security (issue 14): audit rows are keyed. ``alg`` says how ``hash`` was made:
--   'sha256'      the original unkeyed link (rows written before a key was configured);
--   'hmac-sha256' HMAC-SHA256 with a key the writers hold (RPMFLOW_AUDIT_KEY) and the database never
--                 sees, so someone with only database access cannot re-chain edited rows.
-- A keyed row followed by an unkeyed one is reported by audit-verify as a downgrade.
ALTER TABLE audit_log ADD COLUMN alg text NOT NULL DEFAULT 'sha256'
    CHECK (alg IN ('sha256', 'hmac-sha256'));
