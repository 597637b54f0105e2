-- Security (issue 14): a dead letter keeps at most the first 64 KiB of its payload, plus the size
-- and SHA-256 of the whole message, so a hostile 1 MiB payload cannot fill the table while the
-- original stays identifiable. Rows written before this migration keep NULL here (stored whole).
ALTER TABLE dead_letters ADD COLUMN payload_size bigint;
ALTER TABLE dead_letters ADD COLUMN payload_whole_sha256 text;
