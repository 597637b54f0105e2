"""Prometheus metrics of one consumer, in a registry of its own (tests run several in a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from gateway.runtime.fatal import EXIT_LOCAL, Fatal

_LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("rpmflow_ingest_messages", "Messages committed, by outcome",
                                ["outcome"], registry=r)
        self.batches = Counter("rpmflow_ingest_batches", "Batches committed", registry=r)
        self.retries = Counter("rpmflow_ingest_batch_retries", "Batch commits retried (database unavailable)",
                               registry=r)
        self.dead_letters = Counter("rpmflow_ingest_dead_letters", "Dead letters written, by error class",
                                    ["error_class"], registry=r)
        self.commit_lag = Histogram("rpmflow_ingest_commit_lag_seconds",
                                    "Gateway received_at to commit, per reading", buckets=_LAG_BUCKETS,
                                    registry=r)
        self.batch_seconds = Histogram("rpmflow_ingest_batch_seconds", "Time to write and commit one batch",
                                       registry=r)
        self.acks = Counter("rpmflow_ingest_acks", "Ack messages to gateways (rpm/v1/<gw>/acks), by result"
                            " (sent: handed to the MQTT client; dropped: its queue was full)",
                            ["result"], registry=r)
        self.acked_ids = Counter("rpmflow_ingest_acked_message_ids", "Message ids acknowledged to gateways",
                                 registry=r)
        self.waiting = Gauge("rpmflow_ingest_unacked", "Messages received and not yet acknowledged",
                             registry=r)

    def serve(self, port: int) -> None:
        """Expose ``/metrics`` on ``port`` (0 = off); a port already taken stops the service."""
        if not port:
            return
        try:
            start_http_server(port, addr="127.0.0.1", registry=self.registry)
        except OSError as exc:
            raise Fatal(f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror or exc} "
                        "(RPMFLOW_INGEST_METRICS_PORT, flag --metrics-port)", exit_code=EXIT_LOCAL) from None
