-- Grants on the dashboard's tables (0003, 0040-0049), applied by migrate at the end of every run
-- after it has revoked everything from the service roles. Staff credentials (password hashes,
-- sessions, API tokens, sign-in attempts) are readable by the dashboard only. A new table gets its
-- lines here: see docs/operations.md, "Database roles and grants".

-- dashboard: sign-in, sessions, tokens, user and licence administration.
GRANT SELECT, INSERT ON users, clinician_licenses, dashboard_sessions, api_tokens,
    dashboard_sign_ins TO rpmflow_dashboard;
GRANT UPDATE (password_hash, active) ON users TO rpmflow_dashboard;
-- A user's own display preference (0095), changed on /account/preferences.
GRANT UPDATE (glucose_unit) ON users TO rpmflow_dashboard;
GRANT UPDATE (last_seen_at, ended_at, end_reason) ON dashboard_sessions TO rpmflow_dashboard;
GRANT UPDATE (last_used_at, revoked_at) ON api_tokens TO rpmflow_dashboard;

-- triage and reporting: who a user is (reviews, licences, billing NPIs), never the password hash.
GRANT SELECT (user_id, username, display_name, role, npi, is_physician_or_qhp, active, created_at)
    ON users TO rpmflow_triage, rpmflow_reporting;
GRANT SELECT ON clinician_licenses TO rpmflow_triage, rpmflow_reporting;

-- A licence ended early keeps its row (triage/billing/records.py, run by the admin's workflow).
GRANT UPDATE (valid_to, ended_reason) ON clinician_licenses TO rpmflow_dashboard;

-- Second factor (0093): the dashboard alone reads TOTP secrets, recovery-code hashes and
-- challenges; an admin's reset deletes a user's factor.
GRANT SELECT, INSERT, DELETE ON user_mfa, mfa_recovery_codes TO rpmflow_dashboard;
GRANT UPDATE (totp_secret, confirmed_at, last_step) ON user_mfa TO rpmflow_dashboard;
GRANT UPDATE (used_at) ON mfa_recovery_codes TO rpmflow_dashboard;
GRANT SELECT, INSERT ON mfa_challenges TO rpmflow_dashboard;
GRANT UPDATE (attempts, used_at) ON mfa_challenges TO rpmflow_dashboard;

-- Care teams and break-glass (0097): the dashboard assigns (admin pages) and filters by them;
-- reporting reads them (who could see whom is part of the record).
GRANT SELECT, INSERT ON care_teams, break_glass TO rpmflow_dashboard;
GRANT SELECT, INSERT, DELETE ON care_team_members, care_team_patients TO rpmflow_dashboard;
GRANT SELECT ON care_teams, care_team_members, care_team_patients, break_glass TO rpmflow_reporting;

-- Sign-in throttle counters (0078): every dashboard process counts and expires the same hits.
GRANT SELECT, INSERT, DELETE ON throttle_hits TO rpmflow_dashboard;
