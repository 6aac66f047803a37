"""A webhook receiver for the benchmarks, as an organization's would be: every request's signature
checked with the Standard Webhooks reference library, answered 204; a plain ASGI app under
uvicorn so that the receiver is not what limits the figures.

    RECEIVER_SECRET=whsec_... uvicorn receiver:app --app-dir bench --port N

`GET /stats` answers what it has seen: requests, distinct webhook-ids, bad signatures, the time
of the first and last delivery; `GET /stats?arrivals=1` adds, per post, its `call_timestamp` and
the time it arrived (for the latency figure). `POST /secret` sets the secret to verify with.
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson
from standardwebhooks import Webhook

state: dict[str, Any] = {"requests": 0, "bad": 0, "first": None, "last": None}
seen: set[str] = set()
arrivals: dict[str, float] = {}
verifier = [Webhook(os.environ["RECEIVER_SECRET"])] if os.environ.get("RECEIVER_SECRET") else []


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Any, status: int, body: bytes = b"") -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = await _body(receive)
    if scope["method"] == "GET":
        answer = {**state, "distinct": len(seen)}
        if b"arrivals=1" in scope.get("query_string", b""):
            answer["arrivals"] = arrivals
        await _answer(send, 200, orjson.dumps(answer))
        return
    if scope["path"] == "/secret":
        verifier[:] = [Webhook(body.decode())]
        await _answer(send, 204)
        return
    now = time.time()
    headers = {name.decode(): value.decode() for name, value in scope["headers"]}
    try:
        payload = verifier[0].verify(body, headers)
    except Exception:  # any failure to verify is a bad delivery, counted
        state["bad"] += 1
        await _answer(send, 400)
        return
    state["requests"] += 1
    state["first"] = state["first"] or now
    state["last"] = now
    seen.add(headers["webhook-id"])
    if payload["type"] == "post.created":
        arrivals[payload["data"]["call_timestamp"]] = now
    await _answer(send, 204)
