"""`prism.yaml`: the optional project manifest, parsed safely and validated into `ProjectConfig`.

Only `yaml.safe_load` after a scan that refuses anchors and aliases (the "billion laughs" shape),
tags and a size over `max_config_bytes`. Unknown keys are refused rather than ignored: a key
PRISM does not understand is a claim PRISM cannot honour.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from prism.intake.errors import reject
from prism.intake.limits import IntakeLimits
from prism.intake.paths import check_name
from prism.intake.project import ProjectConfig

CONFIG_NAME = "prism.yaml"
_KEYS = frozenset({"entrypoint", "name", "helpers", "claims"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
_CLAIM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_CLAIMS = 64
MAX_HELPERS = 200
MAX_CLAIM_TEXT = 512


def _bad(explanation: str) -> Exception:
    return reject("project.config_invalid", explanation, path=CONFIG_NAME)


def _load(text: str, limits: IntakeLimits) -> Any:
    if len(text.encode("utf-8")) > limits.max_config_bytes:
        raise reject(
            "project.config_too_large",
            f"prism.yaml is over max_config_bytes={limits.max_config_bytes}",
            path=CONFIG_NAME,
        )
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise reject("project.config_alias", "prism.yaml may not use anchors or aliases", path=CONFIG_NAME)
            tag = getattr(event, "tag", None)
            if tag is not None:
                raise reject("project.config_tag", f"prism.yaml may not use explicit tags ({tag})", path=CONFIG_NAME)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise reject("project.config_yaml", f"prism.yaml is not valid YAML: {exc}"[:500], path=CONFIG_NAME) from exc
    except RecursionError as exc:
        raise reject("project.config_yaml", "prism.yaml nests too deeply", path=CONFIG_NAME) from exc


def _relative_py(value: object, what: str, limits: IntakeLimits) -> str:
    if not isinstance(value, str) or not value.endswith(".py"):
        raise _bad(f"{what} must be a relative path to a .py file, got {value!r}"[:300])
    return check_name(value, limits)


def _claims(value: object) -> dict[str, str | int | float | bool]:
    if not isinstance(value, Mapping):
        raise _bad("claims must be a mapping of names to numbers, strings or booleans")
    if len(value) > MAX_CLAIMS:
        raise _bad(f"claims holds {len(value)} entries, over {MAX_CLAIMS}")
    out: dict[str, str | int | float | bool] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _CLAIM_KEY.match(key):
            raise _bad(f"claim name {key!r} is not a simple identifier"[:300])
        if isinstance(item, str) and len(item) > MAX_CLAIM_TEXT:
            raise _bad(f"claim {key!r} is longer than {MAX_CLAIM_TEXT} characters")
        if not isinstance(item, str | int | float | bool):
            raise _bad(f"claim {key!r} must be a number, string or boolean")
        out[key] = item
    return out


def parse_project_config(text: str, *, limits: IntakeLimits) -> ProjectConfig:
    """Validate the manifest's shape; whether the named files exist is checked by the caller."""
    data = _load(text, limits)
    if data is None:
        return ProjectConfig()
    if not isinstance(data, Mapping):
        raise _bad("prism.yaml must be a mapping at its top level")
    unknown = sorted(str(k) for k in data if k not in _KEYS)
    if unknown:
        raise reject(
            "project.config_unknown_key",
            f"prism.yaml has unsupported keys: {', '.join(unknown)}"[:500],
            path=CONFIG_NAME,
        )
    entrypoint = _relative_py(data.get("entrypoint", "model.py"), "entrypoint", limits)
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
        raise _bad("name must be 1-100 letters, digits, spaces, '.', '_' or '-'")
    helpers_raw = data.get("helpers", [])
    if not isinstance(helpers_raw, list) or len(helpers_raw) > MAX_HELPERS:
        raise _bad(f"helpers must be a list of at most {MAX_HELPERS} .py paths")
    helpers = tuple(_relative_py(h, "each helper", limits) for h in helpers_raw)
    claims = _claims(data.get("claims", {}))
    return ProjectConfig(entrypoint=entrypoint, name=name, helpers=helpers, claims=claims)
