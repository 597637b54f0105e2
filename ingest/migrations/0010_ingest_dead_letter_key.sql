-- Ingest: a redelivered bad message (consumer crashed after commit, before its ack reached the
-- broker) must not be dead-lettered twice. Dead letters written by ingest carry the SHA-256 of
-- topic and payload; rows written by anything else may leave it NULL.
ALTER TABLE dead_letters ADD COLUMN payload_sha256 text;
CREATE UNIQUE INDEX dead_letters_once ON dead_letters (payload_sha256) WHERE payload_sha256 IS NOT NULL;

-- attach_unassigned() looks for readings of one device that have no patient yet.
CREATE INDEX readings_unassigned ON readings (device_id, measured_at) WHERE patient_id IS NULL;
