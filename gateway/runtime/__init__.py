"""The shared runtime room: what every rpmflow service needs to start, retry and stop the same way.

It lives inside ``gateway/`` only because the gateway runs on a Raspberry Pi with the standard
library, bleak and paho-mqtt alone, and everything upstream of a component may be imported by it:
so the one copy every service uses must be importable there. Nothing in this package imports
anything outside the standard library.

* :mod:`gateway.runtime.settings`: typed settings dataclasses read from prefixed environment
  variables, overridden by argparse flags generated from the same fields.
* :mod:`gateway.runtime.retry`: exponential back-off with full jitter, and a retry loop that
  chooses by :class:`~gateway.runtime.retry.ErrorKind` (transient / permanent / authentication).
* :mod:`gateway.runtime.broker`: MQTT v5 reason codes classified into those kinds.
* :mod:`gateway.runtime.fatal`: the one way a service stops on an operator's mistake: one line,
  a non-zero exit, no traceback.
* :mod:`gateway.runtime.urls` (broker URLs), :mod:`gateway.runtime.reach` (why a broker cannot be
  reached) and :mod:`gateway.runtime.gc_tuning` (the servers' garbage-collector setting).
"""
