-- Grants on triage's tables (0002, 0020-0039, billing 0050-0059), applied by migrate at the end of
-- every run after it has revoked everything from the service roles. The audit log is SELECT/INSERT only for every
-- role (its head moves only through the SECURITY DEFINER trigger). A new table gets its lines
-- here: see docs/operations.md, "Database roles and grants".

-- ingest: which patient a device belonged to when a reading was measured, and which gateway it
-- was enrolled on then (0075: a reading from any other gateway is refused).
GRANT SELECT ON device_assignments, device_enrolments TO rpmflow_ingest;

-- triage service (rules, silences, billing, audit-verify, quality).
GRANT SELECT ON patients, device_assignments, flags, flag_events, job_watermarks,
    triage_threshold_overrides, triage_snoozes, triage_suppressions, triage_rule_quality,
    flag_symptom_checks, enrolments, consents, reviews, time_logs, communications, billable_events,
    billing_claims_history, billing_policy, audit_log, audit_chain_head TO rpmflow_triage;
GRANT INSERT, UPDATE ON flags, job_watermarks TO rpmflow_triage;
GRANT SELECT ON device_enrolments TO rpmflow_triage;
GRANT INSERT ON flag_events, triage_suppressions, audit_log TO rpmflow_triage;
GRANT USAGE ON SEQUENCE rpm_episode_seq TO rpmflow_triage;

-- dashboard: the clinical workflow runs in the web process (triage/clinical/*): people and
-- device assignments, flag lifecycle, reviews, promotion, symptom checks, overrides, audit.
GRANT SELECT ON patients, device_assignments, flags, flag_events, job_watermarks,
    triage_threshold_overrides, triage_snoozes, triage_suppressions, triage_rule_quality,
    flag_symptom_checks, enrolments, consents, reviews, time_logs, communications, billable_events,
    billing_claims_history, billing_policy, audit_log, audit_chain_head TO rpmflow_dashboard;
GRANT INSERT ON patients, device_assignments, flags, flag_events, triage_threshold_overrides,
    triage_snoozes, triage_suppressions, flag_symptom_checks, enrolments, consents, reviews,
    time_logs, communications, billable_events, billing_claims_history, audit_log TO rpmflow_dashboard;
GRANT UPDATE ON flags TO rpmflow_dashboard;
GRANT UPDATE (valid_to) ON device_assignments TO rpmflow_dashboard;
-- device enrolment on a gateway (0075), recorded by the admin (triage/clinical/device_enrolments.py).
GRANT SELECT, INSERT ON device_enrolments TO rpmflow_dashboard;
GRANT UPDATE (valid_to, ended_by, end_reason) ON device_enrolments TO rpmflow_dashboard;
GRANT UPDATE (end_date) ON enrolments TO rpmflow_dashboard;
GRANT UPDATE (revoked_at) ON consents TO rpmflow_dashboard;
GRANT UPDATE (revoked_at, revoked_by) ON triage_threshold_overrides TO rpmflow_dashboard;
GRANT USAGE ON SEQUENCE rpm_episode_seq TO rpmflow_dashboard;

-- reporting: read-only, including the audit log.
GRANT SELECT ON patients, device_assignments, flags, flag_events, job_watermarks,
    triage_threshold_overrides,
    triage_snoozes, triage_suppressions, triage_rule_quality, flag_symptom_checks, enrolments,
    consents, reviews, time_logs, communications, billable_events, billing_claims_history,
    billing_policy, audit_log, audit_chain_head, device_enrolments TO rpmflow_reporting;

-- Billing facts (0050): where the patient was, orders, payers, prior authorisations. Recorded by
-- the admin's workflow (triage/billing/records.py, triage/clinical/locations.py; an enrolment's
-- trigger writes its order), read by billing in the triage service and by the promotion gate.
GRANT SELECT ON patient_locations, rpm_orders, patient_payers, prior_authorisations
    TO rpmflow_triage, rpmflow_dashboard, rpmflow_reporting;
GRANT INSERT ON patient_locations, rpm_orders, patient_payers, prior_authorisations TO rpmflow_dashboard;
GRANT UPDATE (effective_to) ON patient_locations, patient_payers TO rpmflow_dashboard;
GRANT UPDATE (state) ON patients TO rpmflow_dashboard;  -- today's state follows the recorded location
GRANT UPDATE (end_date) ON rpm_orders TO rpmflow_dashboard;
GRANT UPDATE (counted_elsewhere, counted_elsewhere_by, counted_elsewhere_at) ON time_logs TO rpmflow_dashboard;

-- Billing results as computed (0051, append-only): written by `rpmflow-triage billing --store`.
GRANT SELECT, INSERT ON billing_runs, billing_decisions TO rpmflow_triage;
GRANT SELECT ON billing_runs, billing_decisions TO rpmflow_dashboard, rpmflow_reporting;

-- Dry weight (0094): set by the care team on the patient page, read by the weight rule.
GRANT SELECT ON patient_dry_weights TO rpmflow_triage, rpmflow_dashboard, rpmflow_reporting;
GRANT INSERT ON patient_dry_weights TO rpmflow_dashboard;
GRANT UPDATE (revoked_at, revoked_by) ON patient_dry_weights TO rpmflow_dashboard;
