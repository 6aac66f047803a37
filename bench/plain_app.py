"""The simplest peer (issue #25's yardstick for one call at a time): FastAPI, a SQLAlchemy session
per request, SQLite in WAL mode with `synchronous=FULL`, one INSERT and one COMMIT per call, then
the answer. No validation beyond parsing JSON, no de-duplication, no group commit. Its database
is `PLAIN_DATABASE` (a file path; made if missing)."""

import os

import orjson
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.orm import Session
from starlette.responses import Response

BODY = orjson.dumps({"success": {"code": 200, "message": "Received CallPower payload."}})

engine = sa.create_engine(f"sqlite:///{os.environ.get('PLAIN_DATABASE', 'plain.db')}")


@sa.event.listens_for(engine, "connect")
def _pragmas(connection, record):  # type: ignore[no-untyped-def]
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.close()


calls = sa.Table(
    "calls", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("raw", sa.Text, nullable=False)
)
calls.metadata.create_all(engine)
app = FastAPI()


@app.post("/api/v1/callpower/call")
def plain(request_body: dict) -> Response:  # type: ignore[type-arg]
    with Session(engine) as session:
        session.execute(calls.insert().values(raw=orjson.dumps(request_body).decode()))
        session.commit()
    return Response(BODY, media_type="application/json")
