"""Prometheus metrics of one consumer, in a registry of its own (tests run several in a process)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from gateway.runtime.fatal import EXIT_LOCAL, Fatal
from ingest.timescale import failing_jobs

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
        # Where publish → commit goes inside this process (per batch, its oldest message): waiting in
        # the inbox for a worker, then receipt to the commit report. commit_lag minus the second is
        # the time before the message reached this process (gateway, broker, socket).
        self.handout_wait = Histogram("rpmflow_ingest_handout_wait_seconds",
                                      "Receipt to hand-out to a worker, oldest message of each batch",
                                      buckets=_LAG_BUCKETS, registry=r)
        self.receipt_to_commit = Histogram("rpmflow_ingest_receipt_to_commit_seconds",
                                           "Receipt by this process to the commit report, oldest message of "
                                           "each batch", buckets=_LAG_BUCKETS, registry=r)
        self.batch_seconds = Histogram("rpmflow_ingest_batch_seconds", "Time to write and commit one batch",
                                       registry=r)
        self.acks = Counter("rpmflow_ingest_acks", "Ack messages to gateways (rpm/v1/<gw>/acks), by result"
                            " (sent: handed to the MQTT client; dropped: its queue was full)",
                            ["result"], registry=r)
        self.acked_ids = Counter("rpmflow_ingest_acked_message_ids", "Message ids acknowledged to gateways",
                                 registry=r)
        self.sessions_lost = Counter("rpmflow_ingest_mqtt_sessions_lost",
                                     "Reconnects where the broker no longer had this process's persistent "
                                     "session (its queued messages are gone)", registry=r)
        self.waiting = Gauge("rpmflow_ingest_unacked", "Messages received and not yet acknowledged",
                             registry=r)

    def watch_timescale_jobs(self, conninfo: str) -> None:
        """Report TimescaleDB's failing background jobs on every scrape (none without it)."""
        self.registry.register(TimescaleJobs(conninfo))

    def serve(self, port: int) -> None:
        """Expose ``/metrics`` on ``port`` (0 = off); a port already taken stops the service."""
        if not port:
            return
        try:
            start_http_server(port, addr="127.0.0.1", registry=self.registry)
        except OSError as exc:
            raise Fatal(f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror or exc} "
                        "(RPMFLOW_INGEST_METRICS_PORT, flag --metrics-port)", exit_code=EXIT_LOCAL) from None


class TimescaleJobs:
    """Scrape-time collector: TimescaleDB's scheduler records job failures (job_stats/job_errors)
    that nothing else would notice; 2.28.3 on PostgreSQL 15 can end a job "Failed" although its
    work was done, so the failure is shown, not interpreted."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    def describe(self) -> list[Metric]:
        return []  # no database round trip at registration

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily("rpmflow_timescale_jobs_check_ok", "1 when the job health could be read")
        failing = GaugeMetricFamily("rpmflow_timescale_jobs_failing",
                                    "TimescaleDB background jobs whose last run did not succeed")
        per_job = GaugeMetricFamily("rpmflow_timescale_job_failures", "Failed runs of each failing job",
                                    labels=["job_id", "proc_name"])
        try:
            with psycopg.connect(self._conninfo, connect_timeout=3, autocommit=True) as conn:
                jobs = failing_jobs(conn)
        except psycopg.Error:
            ok.add_metric([], 0)
            yield ok
            return
        ok.add_metric([], 1)
        failing.add_metric([], len(jobs))
        for job in jobs:
            per_job.add_metric([str(job.job_id), job.proc_name], job.total_failures)
        yield from (ok, failing, per_job)
