"""The operator console at `/console`: server-rendered pages over the store, a little JavaScript.

Every page needs a console session (see `console_auth.py`); every action also needs the
session's CSRF token. Pages are rendered by a Jinja environment that autoescapes everything and
redacts PRISM's own secrets from every value it prints, so neither hostile source nor a leaked
key can reach the page as markup. Writes go through the same functions as the JSON routes and
the CLI (`resolve`, the scoring reads): the console adds no policy of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from prism.api import console_auth as auth
from prism.api.bodies import MAX_EPOCH
from prism.api.console_render import loss_plot_svg, pretty_json, redact
from prism.api.console_views import list_submissions, overview, submission_detail
from prism.api.errors import ApiError
from prism.api.leaderboard_view import SortKey, board_rows, sort_rows
from prism.api.operator_identity import identify
from prism.api.state import app_state, session_scope
from prism.api.views import scores_view
from prism.pipeline.resolution import Action, NotResolvable, resolve, review_queue
from prism.store.base import utcnow
from prism.store.live_curve import live_curve
from prism.store.models import Architecture, Evaluation, Submission
from prism.store.models import SubmissionStatus as S
from prism.store.runtime_config_history import runtime_config_history
from prism.store.scores import architectures
from prism.store.submissions import epoch_at, load_project

_TITLES = {
    400: "Bad request",
    401: "Not logged in",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported",
    422: "Invalid request",
    503: "Unavailable",
}


def error_page(request: Request, status: int, code: str, message: str) -> HTMLResponse:
    """A console error as a page a person can read (the JSON routes keep the JSON body)."""
    settings = auth.settings_of(request)
    session = auth.verify_cookie(settings, request.cookies.get(auth.COOKIE)) if settings.operator_token else None
    return _page(
        request,
        "error.html",
        session,
        status=status,
        status_code=status,
        title=_TITLES.get(status, "Error"),
        code=code,
        message=message,
        back="/console" if session else "/console/login",
        back_label="Back to the overview" if session else "Log in",
    )


class ConsoleRoute(APIRoute):
    """Console routes answer errors with HTML pages; redirects (login required) stay redirects."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                if 300 <= exc.status < 400:
                    raise
                return error_page(request, exc.status, exc.code, exc.message)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
                )
                return error_page(request, 422, "invalid_request", problems or "invalid request")

        return route


router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False, route_class=ConsoleRoute)

HERE = Path(__file__).parent
STATIC = {
    "console.css": (HERE / "static" / "console" / "console.css", "text/css"),
    "console.js": (HERE / "static" / "console" / "console.js", "text/javascript"),
    "mermaid.min.js": (HERE / "static" / "vendor" / "mermaid.min.js", "text/javascript"),
}
MAX_FORM_BYTES = 16 * 1024
STATES = tuple(s.value for s in S)
# Scripts only from PRISM itself; inline styles are allowed because Mermaid's SVG carries a
# <style> element. No inline script can run even if escaping were ever to fail.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

PageSession = Annotated[auth.ConsoleSession, Depends(auth.page_session)]
ActionSession = Annotated[auth.ConsoleSession, Depends(auth.action_session)]
Db = Annotated[Session, Depends(session_scope)]


@lru_cache(maxsize=4)
def _environment(secrets: tuple[str, ...]) -> Environment:
    """One environment per set of secrets: every printed value is redacted, then escaped."""

    def finalize(value: Any) -> Any:
        return redact(value, secrets) if isinstance(value, str) else value

    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        finalize=finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json"] = pretty_json
    env.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"
    env.filters["short"] = lambda value: str(value)[:12] if value else ""
    env.filters["human"] = human_time
    return env


def human_time(value: datetime | str | None, *, now: datetime | None = None) -> str:
    """`2026-11-30 03:12 UTC (5 min ago)` from a datetime or an ISO string; `—` for nothing."""
    if not value:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 0:
        ago = "in the future"
    elif seconds < 60:
        ago = "just now"
    elif seconds < 3600:
        ago = f"{int(seconds // 60)} min ago"
    elif seconds < 86400:
        ago = f"{int(seconds // 3600)} h ago"
    else:
        ago = f"{int(seconds // 86400)} d ago"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({ago})"


def _page(
    request: Request, template: str, session: auth.ConsoleSession | None, status: int = 200, **context: Any
) -> HTMLResponse:
    env = _environment(auth.settings_of(request).known_secrets())
    html = env.get_template(f"console/{template}").render(
        csrf=session.csrf if session else "",
        operator=f"operator:{session.operator}" if session else "",
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


async def form_fields(request: Request) -> dict[str, str]:
    """A small URL-encoded form, read without extra dependencies and bounded in size."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise ApiError(415, "unsupported_media_type", "console actions take an URL-encoded form")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise ApiError(413, "form_too_large", f"the form exceeds max_form_bytes={MAX_FORM_BYTES}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, "form_too_large", f"the form exceeds max_form_bytes={MAX_FORM_BYTES}")
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=16)
    return {key: values[0] for key, values in parsed.items()}


Form = Annotated[dict[str, str], Depends(form_fields)]


def _submission(session: Session, submission_id: str) -> Submission:
    submission = session.get(Submission, submission_id) if len(submission_id) <= 36 else None
    if submission is None:
        raise ApiError(404, "not_found", f"no submission {submission_id!r}")
    return submission


# -- login ------------------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    settings = auth.settings_of(request)
    auth.operator_token(settings)
    if auth.verify_cookie(settings, request.cookies.get(auth.COOKIE)) is not None:
        return RedirectResponse(auth.safe_next(next), status_code=303)
    return _page(request, "login.html", None, next=auth.safe_next(next), error="")


@router.post("/login")
def login(request: Request, form: Form) -> Response:
    settings = auth.settings_of(request)
    target = auth.safe_next(form.get("next"))
    auth.operator_token(settings)
    operator = identify(settings, form.get("token", ""))
    if operator is None:
        return _page(request, "login.html", None, status=401, next=target, error="That token is not valid.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        auth.COOKIE,
        auth.issue_cookie(settings, operator=operator),
        max_age=auth.SESSION_SECONDS,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(console: ActionSession, form: Form) -> Response:
    auth.check_csrf(console, form.get("csrf"))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/console", httponly=True, samesite="strict")
    return response


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The console's own assets and vendored Mermaid, from a fixed list (no paths from the URL)."""
    if name not in STATIC:
        raise ApiError(404, "not_found", f"no console asset {name!r}")
    path, media_type = STATIC[name]
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


# -- pages ------------------------------------------------------------------------------------------


@router.get("")
def overview_page(request: Request, console: PageSession, session: Db) -> Response:
    settings = auth.settings_of(request)
    return _page(request, "overview.html", console, o=overview(session, settings), states=STATES)


@router.get("/submissions")
def submissions_page(
    request: Request,
    console: PageSession,
    session: Db,
    state: Annotated[str | None, Query(max_length=16)] = None,
    hotkey: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    if state and state not in STATES:
        raise ApiError(422, "invalid_request", f"state must be one of {', '.join(STATES)}")
    rows = list_submissions(session, state=state or None, hotkey=hotkey or None, page=page)
    return _page(
        request,
        "submissions.html",
        console,
        rows=rows,
        state=state or "",
        hotkey=hotkey or "",
        page=page,
        states=STATES,
    )


@router.get("/submissions/{submission_id}")
def submission_page(
    request: Request,
    submission_id: str,
    console: PageSession,
    session: Db,
    was: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    detail = submission_detail(session, _submission(session, submission_id))
    # Until the signed curve exists, the recorder's live points (advisory, marked unverified).
    live = [] if detail.loss_curve else [p.bits_per_byte for p in live_curve(session, submission_id)]
    return _page(
        request,
        "submission.html",
        console,
        d=detail,
        scores=scores_view(detail.evaluation),
        plot=loss_plot_svg(detail.loss_curve),
        live_points=len(live),
        live_plot=loss_plot_svg(live, label="live training curve, unverified"),
        was=was if was in STATES else "",
        resolvable=detail.submission.status in (S.QUARANTINED.value, S.HELD.value),
    )


@router.get("/submissions/{submission_id}/diff/{other_id}")
def diff_page(request: Request, submission_id: str, other_id: str, console: PageSession, session: Db) -> Response:
    from prism.api.console_render import diff_projects

    mine, other = _submission(session, submission_id), _submission(session, other_id)
    diffs = diff_projects(load_project(session, other.id), load_project(session, mine.id))
    return _page(request, "diff.html", console, mine=mine, other=other, diffs=diffs)


@router.get("/review-queue")
def review_queue_page(request: Request, console: PageSession, session: Db) -> Response:
    return _page(request, "review_queue.html", console, items=review_queue(session))


@router.post("/submissions/{submission_id}/resolve")
def resolve_action(request: Request, submission_id: str, console: ActionSession, form: Form, session: Db) -> Response:
    """Release or reject through `resolve` (audited), then show the submission with its new state."""
    auth.check_csrf(console, form.get("csrf"))
    reason = form.get("reason", "").strip()
    if form.get("action") not in ("release", "reject"):
        raise ApiError(422, "invalid_request", "action must be release or reject")
    action: Action = "release" if form.get("action") == "release" else "reject"
    if not reason or len(reason) > 2000:
        raise ApiError(422, "invalid_request", "a resolution needs a reason (at most 2000 characters)")
    current = _submission(session, submission_id)
    before = current.status
    waiting = before in (S.QUARANTINED.value, S.HELD.value)
    if action == "reject" and waiting and form.get("confirm") != "yes":
        # Rejection is final: ask once more, on a page that works without JavaScript.
        return _page(request, "confirm_reject.html", console, s=current, reason=reason)
    try:
        submission = resolve(session, submission_id, action=action, reason=reason, actor=f"operator:{console.operator}")
    except NotResolvable as exc:
        raise ApiError(409, "not_resolvable", str(exc)) from exc
    session.commit()
    app_state(request).weights.invalidate()
    return RedirectResponse(f"/console/submissions/{quote(submission.id)}?was={before}", status_code=303)


@router.get("/leaderboard")
def leaderboard_page(
    request: Request,
    console: PageSession,
    session: Db,
    epoch: Annotated[int | None, Query(ge=0, le=MAX_EPOCH)] = None,
    sort: Annotated[SortKey, Query()] = "rank",
    dir: Annotated[Literal["asc", "desc"] | None, Query()] = None,
) -> Response:
    current = epoch_at(utcnow(), auth.settings_of(request).epoch_seconds)
    chosen = current if epoch is None else epoch
    descending = dir == "desc"
    rows = sort_rows(board_rows(session, epoch=chosen), sort, descending)
    return _page(
        request, "leaderboard.html", console, rows=rows, epoch=chosen, current=current, sort=sort, descending=descending
    )


@router.get("/architectures")
def architectures_page(request: Request, console: PageSession, session: Db) -> Response:
    return _page(request, "architectures.html", console, families=architectures(session))


@router.get("/architectures/{graph_hash}")
def architecture_page(request: Request, graph_hash: str, console: PageSession, session: Db) -> Response:
    """One family: its owner, and every submission attached to it, with its result."""
    arch = session.get(Architecture, graph_hash) if len(graph_hash) <= 64 else None
    if arch is None:
        raise ApiError(404, "not_found", f"no architecture family {graph_hash[:64]!r}")
    members = session.execute(
        select(Submission, Evaluation)
        .outerjoin(Evaluation, Evaluation.submission_id == Submission.id)
        .where(Submission.architecture_hash == graph_hash)
        .order_by(Submission.created_at)
    ).all()
    return _page(request, "architecture.html", console, arch=arch, members=[(row[0], row[1]) for row in members])


@router.get("/runtime-config")
def runtime_config_page(request: Request, console: PageSession, session: Db) -> Response:
    entries = [entry.to_json() for entry in runtime_config_history(session)]
    return _page(request, "runtime_config.html", console, entries=entries)


@router.get("/{rest:path}")
def not_found_page(rest: str) -> Response:
    """Any other console address: a page that says so (it reveals nothing), not a JSON body."""
    raise ApiError(404, "not_found", f"there is no console page /console/{rest[:200]}")
