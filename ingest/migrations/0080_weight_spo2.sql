-- Reading kinds weight and spo2 (wire contract v1, extended compatibly; issue 16).
-- Kind-generic storage: one nullable column per canonical value, no per-kind table. The kind
-- vocabulary is the wire contract's (gateway/contract.py KINDS); ingest validates it before a row
-- is written, so readings carries no CHECK on kind (a new kind needs no table rewrite). devices
-- keeps its CHECK, extended here.
--   weight_kg     kg, exact from the scale's unit (a pound value stays in original for display)
--   spo2_pct      SpO2 %: a spot-check, or the median of a continuous-oximetry window
--   spo2_min_pct  the window's minimum SpO2 (continuous summaries only)
--   sample_count  samples the window summarised (continuous summaries only; NULL = spot-check)
-- Pulse from an oximeter goes to pulse_bpm, as from a cuff.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'readings'::regclass
               AND conname = 'readings_kind_check') THEN
        ALTER TABLE readings DROP CONSTRAINT readings_kind_check;
    END IF;
END $$;

ALTER TABLE devices DROP CONSTRAINT IF EXISTS devices_kind_check;
ALTER TABLE devices ADD CONSTRAINT devices_kind_check
    CHECK (kind IN ('blood_pressure', 'glucose', 'weight', 'spo2'));

ALTER TABLE readings ADD COLUMN IF NOT EXISTS weight_kg double precision;
ALTER TABLE readings ADD COLUMN IF NOT EXISTS spo2_pct double precision;
ALTER TABLE readings ADD COLUMN IF NOT EXISTS spo2_min_pct double precision;
ALTER TABLE readings ADD COLUMN IF NOT EXISTS sample_count integer;
