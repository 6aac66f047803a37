"""Prometheus instruments: what the processes count. (What the database says at scrape time is
read above the domain, in `monitoring`.)

`rollcall serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before anything imports
prometheus_client, so every process counts into files and `/metrics` adds them up.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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


BACKUP_FAILURES = Counter(
    "rollcall_backup_failures_total",
    "Scheduled backups that failed, by reason (no_space, tool_missing, damaged, error).",
    ["reason"],
)
BACKUP_SECONDS = Histogram(
    "rollcall_backup_duration_seconds",
    "Time to take, check and describe one scheduled backup.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
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
