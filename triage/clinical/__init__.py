"""The clinical workflow room: who the people are and what they may do (people, licences,
consent, enrolment), a clinician's review of one flag, its promotion to a billable event (the
only door), the crisis symptom check, ICD-10 validation and the hash-chained audit log.

Automated flagging lives beside it in ``triage.rules`` and the engine modules; billing (which
reads only promoted, reviewed work) in ``triage.billing``.
"""
