"""Operator routes for the runtime config: show, set (audited, versioned) and its history.

The remote half of `prism runtime-config --url`. Who changed it is the operator credential that
was presented (`prism.api.operator_identity`), not a name typed into a form.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from prism.api.auth import require_operator
from prism.api.errors import ApiError
from prism.api.operator_identity import operator_actor
from prism.api.state import session_scope
from prism.errors import ConfigError
from prism.store.runtime_config_history import runtime_config_history
from prism.store.runtime_configs import load_runtime_config, set_runtime_config

router = APIRouter(prefix="/internal/v1/runtime-config", tags=["operator"], dependencies=[Depends(require_operator)])


class RuntimeConfigChange(BaseModel):
    config: dict[str, Any]
    comment: str | None = Field(None, max_length=2000)


class ActiveConfig(BaseModel):
    version: int | None = Field(description="None: no row was ever set, the defaults apply")
    config: dict[str, Any]


class SetAnswer(BaseModel):
    version: int


class ChangeView(BaseModel):
    key: str
    before: Any
    after: Any


class VersionView(BaseModel):
    version: int
    created_at: str
    created_by: str
    comment: str | None
    active: bool
    changes: list[ChangeView]


class History(BaseModel):
    versions: list[VersionView]


@router.get("", summary="The active runtime config")
def show(session: Annotated[Session, Depends(session_scope)]) -> ActiveConfig:
    try:
        active = load_runtime_config(session)
    except ConfigError as exc:
        raise ApiError(409, "invalid_runtime_config", f"the active runtime config is invalid: {exc}") from exc
    return ActiveConfig(version=active.version, config=active.config.model_dump(mode="json"))


@router.put("", summary="Validate a runtime-config document and make it the active version")
def put(
    change: RuntimeConfigChange, request: Request, session: Annotated[Session, Depends(session_scope)]
) -> SetAnswer:
    try:
        version = set_runtime_config(session, change.config, actor=operator_actor(request), comment=change.comment)
    except ConfigError as exc:
        raise ApiError(422, "invalid_runtime_config", str(exc)) from exc
    session.commit()
    return SetAnswer(version=version)


@router.get("/history", summary="Every version: who set it, when, why, and what it changed")
def history(
    session: Annotated[Session, Depends(session_scope)], limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> History:
    return History(versions=[VersionView(**entry.to_json()) for entry in runtime_config_history(session, limit=limit)])
