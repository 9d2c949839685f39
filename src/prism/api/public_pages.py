"""Public HTML pages (no login): the leaderboard, for miners and anyone watching the subnet.

Only what the public JSON routes already publish: hotkeys, model names, scores, sizes, weights,
architecture hashes. No source, no evidence, no link into the operator console.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from prism.api.console import SECURITY_HEADERS, _environment, human_time
from prism.api.leaderboard_view import SortKey, board_rows, sort_rows
from prism.api.state import app_state, session_scope
from prism.store.base import utcnow
from prism.store.submissions import epoch_at

router = APIRouter(include_in_schema=False)


@router.get("/leaderboard")
def public_leaderboard(
    request: Request,
    session: Annotated[Session, Depends(session_scope)],
    epoch: Annotated[int | None, Query(ge=0)] = None,
    sort: Annotated[SortKey, Query()] = "rank",
    dir: Annotated[Literal["asc", "desc"] | None, Query()] = None,
) -> HTMLResponse:
    settings = app_state(request).settings
    current = epoch_at(utcnow(), settings.epoch_seconds)
    chosen = current if epoch is None else epoch
    descending = dir == "desc"
    env = _environment(settings.known_secrets())
    env.filters.setdefault("human", human_time)
    html = env.get_template("console/public_leaderboard.html").render(
        rows=sort_rows(board_rows(session, epoch=chosen), sort, descending),
        epoch=chosen,
        current=current,
        sort=sort,
        descending=descending,
        slug=settings.challenge_slug,
    )
    return HTMLResponse(html, headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=30"})
