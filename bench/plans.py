"""The query plan of every statement behind every console page and API list, on a big database.

    python bench/plans.py DATABASE [--all]

DATABASE is a SQLite file or PostgreSQL URL built by `bench/data.py`. The app runs in this
process (no server); each page and list of `bench/scale.py` is fetched once while every SELECT it
sends is recorded, then each distinct statement is explained with its own parameters. A plan that
reads a big table whole (SQLite `SCAN calls` without an index; PostgreSQL `Seq Scan on calls`) or
sorts rows it fetched from one (a temporary B-tree, a Sort node) is flagged. Not flagged: a walk
of a table in id order that stops at its LIMIT (`... ORDER BY calls.id DESC LIMIT` with no
other condition on the table: the keyset page of an unfiltered list). `--all`
prints every plan, not only the flagged ones. Exit status 1 if anything was flagged.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import TOKEN, sign_in, targets  # noqa: E402

from rollcall.app import create_app  # noqa: E402
from rollcall.config import Settings  # noqa: E402
from rollcall.db import Database, normalize_url  # noqa: E402

BIG = ("calls", "posts", "signups", "users", "events", "webhook_deliveries")
_SQLITE_SCAN = re.compile(rf"SCAN ({'|'.join(BIG)})\b(?! USING (COVERING )?INDEX)")
_POSTGRES_SCAN = re.compile(rf"Seq Scan on ({'|'.join(BIG)})\b")
_BIG_TABLE = re.compile(rf"\b({'|'.join(BIG)})\b")


def _filtered(statement: str, table: str) -> bool:
    """Whether the statement narrows `table` by a column other than its id (a walk in id order
    then reads every row the filter leaves out)."""
    where = re.search(r"\bWHERE (.*?)(ORDER BY|GROUP BY|LIMIT|$)", statement)
    columns = re.findall(rf"\b{table}\.(\w+)", where.group(1)) if where else []
    return any(column != "id" for column in columns)


def problems(dialect: str, statement: str, plan: list[str]) -> list[str]:
    """The lines of a plan that read a big table whole or sort what was read from one."""
    found = []
    walks_in_order = {
        table
        for table in BIG
        if re.search(rf"ORDER BY {table}\.id (ASC|DESC) LIMIT", statement) and not _filtered(statement, table)
    }
    scan = _SQLITE_SCAN if dialect == "sqlite" else _POSTGRES_SCAN
    for n, line in enumerate(plan):
        match = scan.search(line)
        if match and match.group(1) not in walks_in_order:
            found.append(line)
        # PostgreSQL: walking the primary key while a filter drops rows (the plan for "a member's
        # signups, newest first" without an index on (northstar_id, id)).
        walk = re.search(rf"Index Scan (Backward )?using (\w+)_pkey on ({'|'.join(BIG)})\b", line)
        if walk and any("Filter:" in later for later in plan[n + 1 : n + 3]):
            found.append(line)
    sorts = [line for line in plan if "TEMP B-TREE" in line or line.lstrip("-> ").startswith("Sort ")]
    if sorts and any(_BIG_TABLE.search(line) for line in plan):
        found += sorts
    return found


def explain(connection: Any, dialect: str, statement: str, parameters: Any) -> list[str]:
    if dialect == "sqlite":
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return [row[-1] for row in rows]
    return [row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters).all()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database")
    parser.add_argument("--all", action="store_true", help="print every plan")
    args = parser.parse_args()
    url = args.database if "://" in args.database else f"sqlite:///{Path(args.database).resolve()}"
    settings = Settings(
        database_url=url, admin_tokens=(TOKEN,), callpower_api_keys=("bench-callpower-key-0123456789abcdefgh",)
    )
    seen: dict[str, tuple[str, Any]] = {}  # statement text → (page, parameters), first seen
    current = ["setup"]

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and statement not in seen:
            seen[statement] = (current[0], parameters)

    with TestClient(create_app(settings, run_importer=False)) as client:
        sign_in(client)
        requests = targets(client)
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
        for name, (path, query, headers) in requests.items():
            current[0] = name
            answer = client.get(path, params=query, headers=headers)
            assert answer.status_code == 200, (name, answer.status_code)
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)

    database = Database(normalize_url(url))
    flagged = 0
    with database.engine.connect() as connection:
        for statement, (page, parameters) in seen.items():
            plan = explain(connection, database.dialect, statement, parameters)
            bad = problems(database.dialect, " ".join(statement.split()), plan)
            flagged += bool(bad)
            if bad or args.all:
                print(f"{'FLAGGED' if bad else 'ok'}  [{page}]  {' '.join(statement.split())[:300]}")
                for line in plan:
                    print(f"      {line}")
    database.dispose()
    print(f"{len(seen)} statements explained; {flagged} flagged")
    raise SystemExit(1 if flagged else 0)


if __name__ == "__main__":
    main()
