"""The campaign results' posts as the pipeline knows them: each `phone-call` post with its call's
source campaign, read by the source, for `reports.figures.rebuild` (`rollcall stats rebuild`)."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from rollcall.activity.models import Post
from rollcall.calls.models import Call
from rollcall.calls.source import Source
from rollcall.progress import Progress, quiet
from rollcall.reports import figures

BATCH = 20_000


def posts(session: Session) -> Iterator[list[figures.PostRow]]:
    """Every post made from a call, in batches by id, as `figures.PostRow`s."""
    earlier = aliased(Post)
    first = ~sa.exists().where(earlier.northstar_id == Post.northstar_id, earlier.id < Post.id)
    after = 0
    while True:
        rows = session.execute(
            sa.select(
                Post.id,
                Post.campaign_id,
                Post.action_id,
                Call.callpower_campaign_id,
                Post.northstar_id,
                Post.call_timestamp,
                Post.details,
                first,
            )
            .join(Call, Call.id == Post.call_id)
            .where(Post.id > after)
            .order_by(Post.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        after = rows[-1][0]
        yield [(*row[:7], bool(row[7])) for row in rows]


def rebuild(session: Session, source: Source, progress: Progress = quiet) -> int:
    """Recount the campaign results from the posts, in the caller's transaction; how many kept
    rows were wrong."""
    total = session.scalar(sa.select(sa.func.count()).select_from(Post)) or 0

    def counted() -> Iterator[list[figures.PostRow]]:
        done = 0
        progress("posts", 0, total)
        for batch in posts(session):
            yield batch
            done += len(batch)
            progress("posts", done, max(done, total))

    return figures.rebuild(session, counted(), source.reported)
