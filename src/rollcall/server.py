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


class HeadersTooLarge(Exception):
    pass


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools), with a deadline and a size limit on headers."""

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
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._heard = False  # any byte of the current request
        self._too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_arrived()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._heard = True
        super().data_received(data)

    def _await_headers(self) -> None:
        if self._header_deadline is None:
            self._header_bytes = 0
            self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _headers_arrived(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self._heard:
            self._refuse(408, b"The request headers did not arrive in time.")
        else:
            self.transport.close()  # connected, and never said a word

    def _refuse(self, status: int, message: bytes) -> None:
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

    # httptools' callbacks: a request begins, its headers come in, they are complete.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._heard = True
        self._await_headers()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._too_large = True
            raise HeadersTooLarge()  # stops the parser; answered in `send_400_response`

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._headers_arrived()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._heard = False

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse(431, b"The request headers are too large.")
        else:
            super().send_400_response(msg)


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
