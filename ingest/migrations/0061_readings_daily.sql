-- Per-patient daily statistics for the patient page's 30- and 90-day views. On plain PostgreSQL
-- a view computes them from readings (one patient's rows, by readings_patient_time); with the
-- TimescaleDB community edition migrate replaces it with a continuous aggregate of the same
-- name and columns (ingest/timescale_policies.py). Days are UTC days; billing counts the
-- patient's local days from readings itself, exactly.
CREATE VIEW readings_daily AS
SELECT patient_id, kind, date_bin(interval '1 day', measured_at, timestamptz '2000-01-01 00:00+00') AS day,
       count(*) AS readings,
       count(*) FILTER (WHERE quality = 'valid') AS valid,
       min(systolic_mmhg) FILTER (WHERE quality = 'valid') AS systolic_min,
       avg(systolic_mmhg) FILTER (WHERE quality = 'valid') AS systolic_avg,
       max(systolic_mmhg) FILTER (WHERE quality = 'valid') AS systolic_max,
       avg(diastolic_mmhg) FILTER (WHERE quality = 'valid') AS diastolic_avg,
       avg(pulse_bpm) FILTER (WHERE quality = 'valid') AS pulse_avg,
       min(glucose_mg_dl) FILTER (WHERE quality = 'valid') AS glucose_min,
       avg(glucose_mg_dl) FILTER (WHERE quality = 'valid') AS glucose_avg,
       max(glucose_mg_dl) FILTER (WHERE quality = 'valid') AS glucose_max
FROM readings
WHERE patient_id IS NOT NULL
GROUP BY patient_id, kind, date_bin(interval '1 day', measured_at, timestamptz '2000-01-01 00:00+00');
