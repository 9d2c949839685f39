"""Property-based fuzz of the HTTP edge on both backends: malformed values never reach the
database as an error (0 responses 5xx), and whatever is accepted is stored exactly."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from prism.api.app import create_app
from prism.config import Settings
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.models import Submission, SubmissionArchive
from tests.api.conftest import MODEL, make_zip
from tests.conftest import TOKEN

HOTKEY = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
OTHER = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
BRIDGE = "/internal/v1/bridge/submissions"
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

# JSON fragments the database cannot store (or no reader keeps exact), as raw text.
HOSTILE = [
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud800"',
    '"x\\udfffy"',
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "-Infinity",
    "9" * 5000,
    "-" + "9" * 30,
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 40 + "1" + "}" * 40,
]
PLAIN = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20).map(json.dumps),
    st.sampled_from(["true", "false", "null"]),
)
FRAGMENT = st.one_of(PLAIN, st.sampled_from(HOSTILE))
VALUE = st.recursive(
    FRAGMENT,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
        st.dictionaries(
            st.one_of(st.text(max_size=5).map(json.dumps), st.sampled_from(['"\\u0000k"', '"\\udc80"'])),
            inner,
            max_size=3,
        ).map(lambda d: "{" + ",".join(f"{k}:{v}" for k, v in d.items()) + "}"),
    ),
    max_leaves=6,
)


@pytest.fixture
def app_client(db_url: str, settings: Settings) -> Iterator[tuple[TestClient, Engine]]:
    engine = make_engine(db_url)
    upgrade(engine)
    with TestClient(create_app(settings, engine=engine)) as client:
        yield client, engine
    engine.dispose()


def _body(metadata_text: str, variant: int) -> bytes:
    code = base64.b64encode(make_zip({"model.py": MODEL + f"\n# {variant}\n"})).decode()
    return f'{{"filename":"project.zip","code":"{code}","metadata":{metadata_text}}}'.encode()


def _stored(engine: Engine, submission_id: str) -> tuple[dict[str, Any], bytes]:
    with make_session_factory(engine)() as session:
        row = session.get(Submission, submission_id)
        archive = session.get(SubmissionArchive, submission_id)
        assert row is not None and archive is not None
        return row.submit_metadata, archive.data


@FUZZ
@given(metadata=VALUE, variant=st.integers(0, 10**9))
def test_bridge_json_metadata(app_client: tuple[TestClient, Engine], metadata: str, variant: int) -> None:
    client, engine = app_client
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Base-Verified-Hotkey": HOTKEY, "Content-Type": "application/json"}
    body = _body(metadata, variant)
    response = client.post(BRIDGE, headers=headers, content=body)
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code in (200, 201):
        # Nothing an accepted upload carries is lost: the bytes and the metadata are stored exactly.
        # (200: these bytes from this hotkey were stored before, with the first upload's metadata.)
        sent = json.loads(body)
        stored_metadata, stored_archive = _stored(engine, response.json()["id"])
        assert stored_archive == base64.b64decode(sent["code"])
        if response.status_code == 201:
            assert stored_metadata == (sent["metadata"] or {})
    else:
        assert response.status_code in (400, 413, 422), response.text


HEADER_VALUES = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b and b"\x00" not in b),
    st.sampled_from(
        [b"prism", b"evil", HOTKEY.encode(), OTHER.encode(), "é".encode("latin-1"), b"sha256:" + b"0" * 64]
    ),
)
IDENTITY = ["X-Base-Verified-Hotkey", "X-Base-Challenge-Slug", "X-Base-Request-Hash", "X-Base-Verified-Nonce"]


@FUZZ
@given(
    extra=st.lists(st.tuples(st.sampled_from([*IDENTITY, "X-Platform-Verified-Hotkey"]), HEADER_VALUES), max_size=4),
    variant=st.integers(0, 10**9),
)
def test_bridge_headers(app_client: tuple[TestClient, Engine], extra: list[tuple[str, bytes]], variant: int) -> None:
    client, _engine = app_client
    headers: list[tuple[bytes, bytes]] = [
        (b"authorization", f"Bearer {TOKEN}".encode()),
        (b"x-base-verified-hotkey", HOTKEY.encode()),
        (b"x-submission-filename", b"project.zip"),
        *((name.lower().encode(), value.strip()) for name, value in extra),
    ]
    response = client.post(BRIDGE, headers=headers, content=make_zip({"model.py": MODEL + f"\n# {variant}\n"}))
    assert response.status_code < 500, response.text
    names = [name for name, _ in headers]
    if len(names) != len(set(names)):
        assert response.status_code == 400 and response.json()["error"]["code"] == "duplicate_header"


SEGMENT = st.one_of(
    st.text(max_size=40).map(lambda t: "".join(f"%{b:02X}" for b in t.encode("utf-8", "surrogatepass"))),
    st.sampled_from(["a%00b", "%00", "%ED%A0%80", "x" * 5000, "..", "%2F", "%FF"]),
)


@FUZZ
@given(segment=SEGMENT, epoch=st.one_of(st.integers(), st.sampled_from(["1e30", "10" + "0" * 30, "NaN", "%00"])))
def test_paths_and_queries(app_client: tuple[TestClient, Engine], segment: str, epoch: int | str) -> None:
    client, _engine = app_client
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for url in (
        f"/v1/submissions/{segment}",
        f"/internal/v1/submissions/{segment}",
        f"/v1/leaderboard?epoch={epoch}",
        f"/v1/leaderboard?epoch={segment}",
        f"/internal/v1/get_weights?x={segment}",
    ):
        response = client.get(url, headers=auth)
        assert response.status_code < 500, (url, response.text)
