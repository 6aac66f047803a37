"""How rollcall serves HTTP: uvicorn, with a deadline and a size limit on every request's headers
and a bound on connections, so a slow or hostile client cannot hold the service.

uvicorn times out idle keep-alive connections, but not a request whose headers arrive a byte at
a time (slowloris): `DeadlineProtocol` gives each request's headers a total deadline from the
moment the request began (or the connection was made) and a size limit, with and without TLS.
Bodies have their own total deadline (`http.BodyLimit`). Connections and requests in progress
per process are bounded by uvicorn's `limit_concurrency` (503 beyond). A TLS handshake is
bounded by asyncio's own timeout (60 s). docs/deploy.md says what a proxy adds on top.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from rollcall.config import Settings

SWEEP_EVERY = 0.25  # seconds between looks at the connections still waiting for their headers


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools), with a deadline and a size limit on headers.

    It runs for every request CallPower sends, so it adds no timer and no callback per request:
    a request's headers are awaited from the first byte of it (or from the connection, for the
    first), which is noted as a time; one sweep per process (`_sweeping`, a few times a second)
    closes the connections whose headers are late. Their size is counted per chunk received: a
    chunk that goes past the limit before the headers' end is refused unread.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float,
        max_header_bytes: int,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.awaiting_since: float | None = None  # when this request began, while its headers are incomplete
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.awaiting_since = self.loop.time()
        _sweeping(self.loop, self.connections)

    def data_received(self, data: bytes) -> None:
        if self.awaiting_since is None:
            if self.cycle is not None and (self.cycle.more_body or not self.cycle.response_complete):
                super().data_received(data)  # the request in progress: its body, or the rest of it
                return
            self.awaiting_since = self.loop.time()  # a new request begins
            self._header_bytes = 0
        room = self.max_header_bytes - self._header_bytes
        if len(data) > room and b"\r\n\r\n" not in data[: max(room, 0) + 4]:
            if not self.transport.is_closing():
                self.refuse(431, b"The request headers are too large.")
            return
        self._header_bytes += len(data)
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:  # its headers are complete: a request began
            self.awaiting_since = None

    def late(self, now: float) -> bool:
        return self.awaiting_since is not None and now - self.awaiting_since > self.header_timeout

    def cut_off(self) -> None:
        """The headers are late: 408, or a silent close for a connection that said nothing."""
        self.awaiting_since = None
        if self.transport.is_closing():
            return
        if self._header_bytes:
            self.refuse(408, b"The request headers did not arrive in time.")
        else:
            self.transport.close()

    def refuse(self, status: int, message: bytes) -> None:
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\n" % len(message),
                    b"connection: close\r\n\r\n",
                    message,
                ]
            )
        )
        self.transport.close()


_sweeps: set[asyncio.AbstractEventLoop] = set()


def _sweeping(loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
    """Start the process's sweep of late headers (once per event loop)."""
    if loop in _sweeps:
        return
    _sweeps.add(loop)

    def sweep() -> None:
        now = loop.time()
        for connection in list(connections):
            if isinstance(connection, DeadlineProtocol) and connection.late(now):
                connection.cut_off()
        loop.call_later(SWEEP_EVERY, sweep)

    loop.call_later(SWEEP_EVERY, sweep)


def protocol(settings: Settings) -> Any:
    """The HTTP protocol for uvicorn's `http=` (a partial of a module-level class: it crosses to
    the worker processes of `--workers N` by pickling)."""
    return functools.partial(
        DeadlineProtocol, header_timeout=settings.header_timeout_seconds, max_header_bytes=settings.max_header_bytes
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What every uvicorn that serves rollcall is given: the protocol, the limits, whom to believe
    about the client's address, and no log set-up of its own (`logs.configure_logging` routes its
    lines through rollcall's chain)."""
    proxies = list(settings.trusted_proxies)
    return {
        "http": protocol(settings),
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": 5,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "log_config": None,
        "access_log": False,
        "server_header": False,
    }
