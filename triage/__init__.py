"""Triage: readings in, flags out, and the clinical and billing work that follows them.

Three rooms beside the engine: ``triage.rules`` (pure rules over frames, ``now`` passed in),
``triage.clinical`` (people, review, promotion, crisis, audit) and ``triage.billing`` (the monthly
engine, pure, with its stores). The engine modules here schedule the jobs (``jobs``, ``service``),
load frames (``loader``, ``readings_store``), hold the flag lifecycle's one transition table
(``lifecycle``) and the flag stores (``flags_store``, ``flag_views_store``). docs/architecture.md
draws the rooms and who may import whom.
"""
