"""Structured logs: JSON lines when stdout is not a terminal, readable lines when it is; and
nothing secret in any of them, whoever wrote the line.

Every line goes through one chain that ends at the sink: rollcall's own (structlog), those of
the libraries underneath (uvicorn, SQLAlchemy, python-multipart, httpx, asyncio: the standard
library's logging, handed to the same chain), warnings, and uncaught exceptions in any thread.
Tracebacks are written without the frames' local variables (structlog shows them by default,
and one crash line held the staff token hundreds of times). The last step before a line is
written, `redact`, replaces every secret the process knows (CallPower keys, staff tokens, the
dedup and console secrets, webhook secrets: `keep_secret`) and whatever is shaped like a phone
number or a session token, in every field.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from types import TracebackType
from typing import Any

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer

_JSON_LINES = False
_SECRETS: set[str] = set()
REDACTED_SECRET = "[secret]"
REDACTED_NUMBER = "[number]"

# A phone number in any common formatting: an optional +, digits, and single separators between
# groups. Standing alone (not inside a word, an id or a time). Counted as a number with a + and
# at least 6 digits (a territory's short national number with its country code), or without one
# at least 9 (a national number; a date such as 2017-11-07 has 8 digits, and is kept).
_NUMBER = re.compile(r"(?:(?<![\w+])(\+\s?)|(?<![\w+.:/-]))\(?\d+(?:(?:[ .()/-]|\) ){1,2}\(?\d+)*(?![\w:])")
# A webhook signing secret, and what looks like a random session or CSRF token: 32 or more URL-safe
# characters mixing digits, upper and lower case (request ids, user ids and keys are hex; names
# in code and paths are not mixed so).
_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")
_TOKEN = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Z])(?=[\w-]*[a-z])[\w-]{32,}(?![\w-])", re.ASCII)


def keep_secret(*values: str | None) -> None:
    """Secrets this process holds: never written in a log line (replaced by `[secret]`)."""
    _SECRETS.update(value for value in values if value)


def _number(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(character.isdigit() for character in text)
    return REDACTED_NUMBER if digits >= (6 if match.group(1) else 9) else text


def scrub(text: str) -> str:
    """The text with every known secret and everything shaped like a number or a token replaced."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED_SECRET)
    text = _WEBHOOK_SECRET.sub(REDACTED_SECRET, text)
    text = _TOKEN.sub(REDACTED_SECRET, text)
    return _NUMBER.sub(_number, text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if isinstance(value, bytes):
        return scrub(value.decode("utf-8", errors="replace"))
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value))


def redact(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The last step before a line is written: every field cleaned (`scrub`)."""
    return {key: _clean(value) for key, value in event.items()}


def _processors(json_lines: bool) -> tuple[list[Any], Any]:
    """The chain every line goes through after its own fields are gathered, and the renderer."""
    if json_lines:
        exceptions: Any = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        renderer: Any = structlog.processors.JSONRenderer(orjson.dumps)
    else:
        exceptions = structlog.processors.format_exc_info
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    tail = [
        structlog.processors.add_log_level,
        exceptions,
        redact,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    return tail, renderer


class _Sink:
    """Where every line ends: stdout, as bytes (JSON lines) or text (a terminal)."""

    def msg(self, message: str | bytes) -> None:
        stream = sys.stdout
        if isinstance(message, bytes):
            stream.buffer.write(message + b"\n")
        else:
            stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def configure_logging(level: str = "INFO", secrets: Iterable[str | None] = ()) -> None:
    """Set up every process's logging: structlog and the standard library's, one chain, one sink.
    `secrets`: those the settings give (more are added as they are read: `keep_secret`)."""
    global _JSON_LINES
    keep_secret(*secrets)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    json_lines = not sys.stdout.isatty()
    tail, renderer = _processors(json_lines)
    sink = _Sink()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *args: sink,
        cache_logger_on_first_use=False,
    )
    _JSON_LINES = json_lines and numeric <= logging.INFO
    _route_standard_logging(numeric, tail, renderer)
    _catch_uncaught()


class _StandardLines(logging.Handler):
    """The standard library's records (uvicorn, SQLAlchemy, python-multipart, asyncio, warnings),
    through the same chain as rollcall's own lines."""

    def __init__(self, tail: list[Any], renderer: Any) -> None:
        super().__init__()
        self._logger = structlog.wrap_logger(
            _Sink(), processors=[structlog.contextvars.merge_contextvars, *tail, renderer]
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a library's format string that does not fit its arguments
            message = str(record.msg)
        fields: dict[str, Any] = {"logger": record.name}
        if record.exc_info and record.exc_info[0] is not None:
            fields["exc_info"] = record.exc_info
        method = record.levelname.lower() if record.levelname.lower() in _METHODS else "info"
        getattr(self._logger, method)(message, **fields)


_METHODS = ("debug", "info", "warning", "error", "critical")


def _route_standard_logging(level: int, tail: list[Any], renderer: Any) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_StandardLines(tail, renderer))
    # Libraries say what matters at WARNING (alembic, for one, narrates at INFO); uvicorn's start
    # and stop are worth an operator's INFO.
    root.setLevel(max(level, logging.WARNING))
    logging.getLogger("uvicorn.error").setLevel(level)
    # uvicorn's own handlers (when it configured them) write plain lines: send those to the root too.
    for name in ("uvicorn", "uvicorn.error", "python_multipart", "python_multipart.multipart"):
        library = logging.getLogger(name)
        library.handlers = []
        library.propagate = True
    # rollcall writes its own `request` line for every request (`log_request`): no access log.
    access = logging.getLogger("uvicorn.access")
    access.handlers, access.propagate, access.disabled = [], False, True
    logging.captureWarnings(True)


_crashes = structlog.get_logger("rollcall.crash")


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    _crashes.error("crashed", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(arguments: threading.ExceptHookArgs) -> None:
    if arguments.exc_type is SystemExit:
        return
    _crashes.error(
        "thread.crashed",
        thread=arguments.thread.name if arguments.thread else None,
        exc_info=(arguments.exc_type, arguments.exc_value, arguments.exc_traceback),
    )


def _catch_uncaught() -> None:
    """An exception nothing caught is logged through the chain (no locals, redacted), in any thread."""
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


_requests = structlog.get_logger("rollcall.http")


def log_request(request_id: str, **fields: Any) -> None:
    """The one `request` line per HTTP request, at INFO.

    It is written for every call CallPower sends, so in JSON mode it skips structlog's processor
    chain (20 us a line, a tenth of a bare endpoint's whole request) and writes the very line
    that chain would write: the fields, then event, request_id, level and timestamp. A path
    that is not its route's own (it holds what a client sent) is redacted as the chain would;
    the request id comes redacted already (`http.RequestLog`). Anywhere else (a terminal, another
    level) it goes through structlog like every other line.
    """
    if not _JSON_LINES:
        _requests.info("request", **fields)
        return
    if fields["path"] != fields["route"]:
        fields["path"] = scrub(fields["path"])
    fields["event"] = "request"
    fields["request_id"] = request_id
    fields["level"] = "info"
    fields["timestamp"] = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    stream = sys.stdout.buffer
    stream.write(orjson.dumps(fields) + b"\n")
    stream.flush()


_imports = structlog.get_logger("rollcall.importer")


def log_each(event: str, rows: list[dict[str, Any]]) -> None:
    """One line per row at INFO (the importer's `call.import` line per call), written together:
    in JSON mode with one write for all of them and without structlog's processor chain (the
    same lines it would write), as `log_request` does. Its rows hold ids and states only."""
    if not rows:
        return
    if not _JSON_LINES:
        for fields in rows:
            _imports.info(event, **fields)
        return
    stamp = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    context = structlog.contextvars.get_contextvars()
    lines = [
        orjson.dumps({**context, **fields, "event": event, "level": "info", "timestamp": stamp}) for fields in rows
    ]
    stream = sys.stdout.buffer
    stream.write(b"\n".join(lines) + b"\n")
    stream.flush()
