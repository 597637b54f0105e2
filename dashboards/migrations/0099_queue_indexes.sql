-- The nurse queue at 10,000 open flags (issue 17: p99 under 200 ms).
-- flags_active_rank: the queue's own order (severity rank, oldest first) over the flags still
-- needing someone (triage.lifecycle.ACTIVE_STATES; tests/dashboards/test_queue_speed.py checks the
-- two lists agree), so the 200-row page reads the first 200 entries instead of sorting every open
-- flag. dashboards.queries writes the same CASE and the same IN list, or the planner cannot use it.
CREATE INDEX flags_active_rank ON flags (
    (CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'moderate' THEN 2 ELSE 3 END),
    opened_at, flag_id)
    WHERE state IN ('open', 'acknowledged', 'escalated', 'reviewed');
-- flags_active_severity: the per-severity counts above the queue, read from the index alone.
CREATE INDEX flags_active_severity ON flags (severity, patient_id)
    WHERE state IN ('open', 'acknowledged', 'escalated', 'reviewed');
-- flags_rule: the queue's Reason filter lists the distinct rules, one index probe per rule
-- (a dozen) instead of reading every flag ever raised.
CREATE INDEX flags_rule ON flags (rule_id);
