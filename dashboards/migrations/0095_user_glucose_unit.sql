-- Each user's glucose display unit (issue 17): clinicians trained in mmol/L read mmol/L. Storage,
-- thresholds, the API and exports stay in mg/dL (DOMAIN H6: one canonical unit); this is a view.
ALTER TABLE users ADD COLUMN glucose_unit text NOT NULL DEFAULT 'mg/dL'
    CONSTRAINT users_glucose_unit CHECK (glucose_unit IN ('mg/dL', 'mmol/L'));
