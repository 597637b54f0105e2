"""Monthly RPM billing: a pure engine over dated facts (``facts``, ``gates``, ``rules``, ``policy``,
``engine``; FHIR bodies in ``fhir_model``/``fhir_clinical``/``fhir_claim``), the database side with
its SQL in the ``*_store`` modules (``load`` turns rows into facts, ``compute`` runs and stores a
month), forecast, worklist and exports (CSV, FHIR).

Every code the engine considers comes back as a :class:`~triage.billing.rules.Decision`, emitted or
withheld, with its reason and the evidence behind it (DOMAIN D0, H1).
"""
