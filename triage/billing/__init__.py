"""Monthly RPM billing: a pure rule table (``rules``), SQL facts (``compute``), forecast, export.

Every code the engine considers comes back as a :class:`~triage.billing.rules.Decision`, emitted or
withheld, with its reason and the evidence behind it (DOMAIN D0, H1).
"""
