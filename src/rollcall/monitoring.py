"""What `/metrics` shows: every process's counters (`metrics`, added up across the processes of
`rollcall serve` through PROMETHEUS_MULTIPROC_DIR) and gauges read from the database when
scraped (calls by state, the importer's backlog, webhooks waiting), so they are right whichever
process or machine did the work. The API's `/metrics` and `rollcall worker --metrics-port` both
serve `registry()`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rollcall.backups import snapshots
from rollcall.calls import statistics
from rollcall.db import Database
from rollcall.metrics import MULTIPROCESS_DIRECTORY
from rollcall.times import utcnow
from rollcall.webhooks import queue as webhook_queue


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
        directory = self.database.settings.backup_dir
        if directory:
            newest = snapshots.newest_backup(directory)
            last = GaugeMetricFamily(
                "rollcall_backup_last_success_timestamp_seconds",
                "When the newest backup in ROLLCALL_BACKUP_DIR was taken (Unix time; 0: none yet).",
            )
            last.add_metric([], newest.created.timestamp() if newest and newest.created else 0.0)
            yield last


def registry(database: Database) -> CollectorRegistry:
    """Every process's counters (from the multiprocess directory when there is one, else this
    process's own) and the database's gauges, in one registry."""
    found = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_DIRECTORY):
        multiprocess.MultiProcessCollector(found)  # type: ignore[no-untyped-call]
    else:
        found.register(_ThisProcess())
    found.register(DatabaseCollector(database))
    return found


class _ThisProcess(Collector):
    """One process's own metrics (no multiprocess directory)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition(database: Database) -> tuple[bytes, str]:
    """The text of `/metrics`."""
    return generate_latest(registry(database)), CONTENT_TYPE_LATEST
