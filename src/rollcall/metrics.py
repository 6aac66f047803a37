"""Prometheus metrics: what the processes count, and what the database says at scrape time.

`rollcall serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before its API processes
start, so `/metrics` adds up every process's counters. Call states, the backlog and the oldest
waiting call are read from the database when scraped, so they are right whichever process (or
machine) did the work.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rollcall.calls import statistics
from rollcall.db import Database
from rollcall.times import utcnow
from rollcall.webhooks import queue as webhook_queue

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"

# One histogram, whose _count is the number of requests: one update per request, not two.
REQUEST_SECONDS = Histogram(
    "rollcall_http_request_duration_seconds",
    "Time from request to the end of the answer (its _count: requests answered).",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INTAKE_CALLS = Counter(
    "rollcall_intake_calls_total", "Calls received, by intake path and answer status.", ["path", "status"]
)
IMPORTED_CALLS = Counter("rollcall_import_outcomes_total", "Calls handled by importers, by resulting state.", ["state"])
IMPORT_SECONDS = Histogram(
    "rollcall_import_batch_duration_seconds",
    "Time to import one batch of calls (one transaction).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
IMPORT_CALL_SECONDS = Histogram(
    "rollcall_import_duration_seconds",
    "Time to import one call (its batch's time shared out).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)

WRITER_COMMIT_SECONDS = Histogram(
    "rollcall_writer_commit_duration_seconds",
    "Time to store one batch of deliveries (one transaction, synced to disk).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
WRITER_BATCH_CALLS = Histogram(
    "rollcall_writer_batch_deliveries",
    "Deliveries stored per commit (group commit: one sync to disk for all of them).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


SIGN_IN_FAILURES = Counter(
    "rollcall_console_sign_in_failures_total",
    "Console sign-ins refused: a wrong token, or too many tries (throttled).",
    ["reason"],
)
API_TOKEN_FAILURES = Counter(
    "rollcall_api_token_failures_total",
    "Staff API (and /metrics) requests refused for their bearer token: a wrong token, or too many tries (throttled).",
    ["reason"],
)
WEBHOOK_DELIVERIES = Counter(
    "rollcall_webhook_deliveries_total",
    "Webhook delivery attempts, by endpoint and outcome (delivered, failed, gone).",
    ["webhook", "outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "rollcall_webhook_delivery_latency_seconds",
    "From an event to its delivery (a 2xx from the endpoint).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        states = GaugeMetricFamily("rollcall_calls", "Stored calls by import state.", labels=["state"])
        backlog = GaugeMetricFamily("rollcall_import_backlog", "Calls waiting for an importer (received, failed).")
        oldest = GaugeMetricFamily(
            "rollcall_import_oldest_waiting_seconds", "Age of the oldest call waiting for an importer."
        )
        undelivered = GaugeMetricFamily(
            "rollcall_webhook_deliveries_waiting",
            "Webhook events not yet delivered (pending, to retry, or behind a cursor).",
        )
        undelivered_age = GaugeMetricFamily(
            "rollcall_webhook_oldest_waiting_seconds", "Age of the oldest webhook event not yet delivered."
        )
        with self.database.reading() as session:
            counts = statistics.count_calls_by_state(session)
            waiting, first = statistics.backlog(session)
            pending, since = webhook_queue.waiting(session)
        undelivered.add_metric([], pending)
        undelivered_age.add_metric([], max(0.0, (utcnow() - since).total_seconds()) if since else 0.0)
        for state, count in counts.items():
            states.add_metric([state], count)
        backlog.add_metric([], waiting)
        age = (utcnow() - first).total_seconds() if isinstance(first, dt.datetime) else 0.0
        oldest.add_metric([], max(0.0, age))
        yield states
        yield backlog
        yield oldest
        yield undelivered
        yield undelivered_age


def exposition(database: Database) -> tuple[bytes, str]:
    """The text of `/metrics`: every process's counters (multiprocess mode) and the database's gauges."""
    if os.environ.get(MULTIPROCESS_DIRECTORY):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)  # type: ignore[no-untyped-call]
    else:
        processes = REGISTRY  # one process: its own metrics
    from_database = CollectorRegistry()
    from_database.register(DatabaseCollector(database))
    return generate_latest(processes) + generate_latest(from_database), CONTENT_TYPE_LATEST
