"""A project too large for one request is reviewed in parts that together cover every line."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prism.errors import ConfigError
from prism.intake.project import Project
from prism.review.llm import review_project
from prism.review.llm.chunks import fence_cost, plan_chunks
from prism.review.llm.gate import source_lines
from tests.review.llm_support import config_for, fenced, file_label
from tests.stand_ins.openai_server import RecordedRequest, Reply, StandInOpenAI, mermaid_call, verdict_call

_ROW = re.compile(r"^ *(\d+) ([|~]) (.*)$")


def _reassemble(pieces: list[tuple[str, int, str]]) -> dict[str, dict[int, str]]:
    """path -> line number -> text, joining the continued pieces of split lines."""
    files: dict[str, dict[int, str]] = {}
    for path, _first, body in pieces:
        for row in body.split("\n")[:-1]:
            match = _ROW.match(row)
            assert match, f"unnumbered row {row[:40]!r}"
            number, marker, text = int(match.group(1)), match.group(2), match.group(3)
            lines = files.setdefault(path, {})
            if marker == "~":
                lines[number] += text
            else:
                assert number not in lines, f"{path}:{number} sent twice"
                lines[number] = text
    return files


def _expected(project: Project) -> dict[str, dict[int, str]]:
    return {path: dict(enumerate(source_lines(text), start=1)) for path, text in project.files.items()}


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=3_000)


@settings(max_examples=60, deadline=None)
@given(files=st.dictionaries(st.from_regex(r"[a-z]{1,8}\.py", fullmatch=True), _text, min_size=1, max_size=6))
def test_every_line_is_in_exactly_one_piece_and_every_part_fits(files: dict[str, str]) -> None:
    project = Project(files=files)
    chunks = plan_chunks(project, budget=1_200)

    pieces = [(p.path, p.line_start, p.body) for chunk in chunks for p in chunk.pieces]
    assert _reassemble(pieces) == _expected(project)
    for chunk in chunks:
        assert sum(fence_cost(p.path) + len(p.body) for p in chunk.pieces) <= 1_200


def test_small_files_share_a_part_and_a_file_that_fits_whole_is_not_split() -> None:
    files = {"a.py": "x = 1\n" * 50, "b.py": "y = 2\n" * 50, "c.py": "z = 3\n" * 150}
    chunks = plan_chunks(Project(files=files), budget=2_100)

    assert [[(p.path, p.line_start, p.line_end) for p in c.pieces] for c in chunks] == [
        [("a.py", 1, 50), ("b.py", 1, 50)],
        [("c.py", 1, 150)],
    ]


def test_too_small_a_budget_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="llm_max_request_chars"):
        plan_chunks(Project(files={"a.py": "x\n"}), budget=500)


@pytest.fixture
def server() -> Iterator[StandInOpenAI]:
    with StandInOpenAI(responder=_judge_by_content) as stand_in:
        yield stand_in


def _judge_by_content(request: RecordedRequest) -> Reply:
    """Approve every part, except quarantine-bait: reject citing a line that does not say that."""
    for label, body in fenced(request):
        if "SUSPICIOUS" in body:
            where = file_label(label)
            assert where is not None
            evidence = {"path": where[0], "line_start": where[1], "line_end": where[1], "quote": "os.system('x')"}
            return Reply.tools(mermaid_call(), verdict_call("reject", evidence=[{**evidence, "rule_id": "x"}]))
    return Reply.tools(mermaid_call(), verdict_call("approve"))


def _large_project(extra: str = "") -> Project:
    big = "".join(f"value_{n} = {n} * 2  # line {n}\n" for n in range(1, 3_001))
    long_line = "BLOB = '" + "ab" * 15_000 + "'\n"
    files = {"model.py": "def build_model(ctx):\n    return None\n", "data/big.py": big, "blob.py": long_line}
    files.update({f"helpers/h{i}.py": f"def helper_{i}():\n    return {i}\n" for i in range(20)})
    if extra:
        files["late.py"] = extra
    return Project(files=files)


def test_a_large_project_is_reviewed_in_parts_covering_every_line(server: StandInOpenAI) -> None:
    project = _large_project()
    result = review_project(project, config=config_for(server, max_request_chars=20_000))

    assert result.outcome == "approve"
    assert result.chunks_total > 5 and result.chunks_reviewed == result.chunks_total
    assert len(server.requests) == result.chunks_total
    assert all(
        len(str(r.messages[0]["content"])) + len(str(r.messages[1]["content"])) <= 20_000 for r in server.requests
    )
    pieces = []
    for request in server.requests:
        for label, body in fenced(request):
            where = file_label(label)
            if where is not None:
                pieces.append((where[0], where[1], body))
    assert _reassemble(pieces) == _expected(project)
    assert all(chunk.mermaid for chunk in result.chunks)
    assert result.mermaid is not None and result.mermaid.count("%% chunk") == result.chunks_total


def test_one_unverified_rejection_in_one_part_quarantines_the_whole(server: StandInOpenAI) -> None:
    result = review_project(
        _large_project(extra="SUSPICIOUS = True\n"), config=config_for(server, max_request_chars=20_000)
    )

    assert result.outcome == "quarantine"
    assert [c.outcome for c in result.chunks].count("quarantine") == 1
    assert result.unverified_claims[0].path == "late.py"


def test_a_provider_outage_mid_review_holds_and_stops_sending(server: StandInOpenAI) -> None:
    project = _large_project()
    server.script(
        Reply.tools(mermaid_call(), verdict_call("approve")),
        *[Reply.error(503, "overloaded")] * 2,
    )
    result = review_project(project, config=config_for(server, max_request_chars=20_000, retries=1))

    assert result.outcome == "hold"
    assert len(server.requests) == 3
    assert [c.outcome for c in result.chunks] == ["approve", "provider_error"]
    assert "not attempted" in result.reason
