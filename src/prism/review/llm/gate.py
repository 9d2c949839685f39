"""The evidence gate: PRISM, not the model, decides whether a claimed piece of evidence is real.

A claim verifies when its file exists in the project, its lines exist, it cites at most
`max_evidence_lines` lines, and its quote — compared with whitespace normalized and nothing
else — occurs in those lines, starting on the first cited (non-blank) line and ending on the last.
A fabricated quote, a quote from other lines, or a range stretched around a real quote fails.
A verified claim becomes `Evidence` whose `snippet_sha256` hashes the project's own lines, not the
model's quote. The model's rendering prefix (`  12 | `) is tolerated in quotes because models copy it.
"""

from __future__ import annotations

import dataclasses
import re

from prism.evidence import Evidence
from prism.intake.project import Project
from prism.review.llm.types import ClaimedEvidence

# A quote shorter than this (without spaces) proves little unless it is the whole cited text.
MIN_QUOTE_CHARS = 8
_LINE_PREFIX = re.compile(r"^\s*\d+\s*\|\s?")
_RULE_ID_CHARS = re.compile(r"[^a-z0-9_.-]+")


def source_lines(text: str) -> list[str]:
    """The project's lines, numbered from 1 by the prompt and the gate alike: \\n, \\r\\n and \\r end a line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # a final newline ends the last line; it does not start another
    return lines


def normalize_ws(text: str) -> str:
    return " ".join(text.split())


def sanitize_rule_id(rule_id: str) -> str:
    cleaned = _RULE_ID_CHARS.sub("_", rule_id.strip().lower()).strip("_.-")[:48]
    return cleaned or "unspecified"


def _matches(quote: str, cited: list[str]) -> bool:
    parts = [normalize_ws(line) for line in cited]
    parts = [part for part in parts if part]
    needle = normalize_ws(quote)
    if not parts or not needle:
        return False
    haystack = " ".join(parts)
    compact = len(needle.replace(" ", ""))
    if compact < min(MIN_QUOTE_CHARS, len(haystack.replace(" ", ""))):
        return False
    first_end = len(parts[0])
    last_start = len(haystack) - len(parts[-1])
    start = haystack.find(needle)
    while start != -1:
        if start < first_end and start + len(needle) > last_start:
            return True
        start = haystack.find(needle, start + 1)
    return False


def _without_prefixes(quote: str) -> str | None:
    lines = [line for line in quote.splitlines() if line.strip()]
    if lines and all(_LINE_PREFIX.match(line) for line in lines):
        return "\n".join(_LINE_PREFIX.sub("", line, count=1) for line in lines)
    return None


def verify_claim(project: Project, claim: ClaimedEvidence, *, max_lines: int) -> Evidence | ClaimedEvidence:
    """`Evidence` when the claim checks out against the project, else the claim with its `problem` set."""

    def fail(problem: str) -> ClaimedEvidence:
        return dataclasses.replace(claim, problem=problem)

    text = project.files.get(claim.path)
    if text is None:
        return fail("no such file in the project")
    lines = source_lines(text)
    if not (1 <= claim.line_start <= claim.line_end <= len(lines)):
        return fail(f"lines {claim.line_start}-{claim.line_end} are outside the file's {len(lines)} lines")
    if claim.line_end - claim.line_start + 1 > max_lines:
        return fail(f"cites {claim.line_end - claim.line_start + 1} lines; at most {max_lines} may be cited")
    cited = lines[claim.line_start - 1 : claim.line_end]
    stripped = _without_prefixes(claim.quote)
    if not (_matches(claim.quote, cited) or (stripped is not None and _matches(stripped, cited))):
        return fail("the quote does not match the cited lines")
    return Evidence.at(
        f"llm.{sanitize_rule_id(claim.rule_id)}",
        claim.path,
        claim.line_start,
        claim.explanation or "cited by the LLM reviewer; quote verified against the source",
        snippet="\n".join(cited),
    )


def check_claims(
    project: Project, claims: tuple[ClaimedEvidence, ...], *, max_lines: int
) -> tuple[tuple[Evidence, ...], tuple[ClaimedEvidence, ...]]:
    """Split claims into verified `Evidence` and the claims that did not verify (with their problem)."""
    verified: list[Evidence] = []
    unverified: list[ClaimedEvidence] = []
    for claim in claims:
        result = verify_claim(project, claim, max_lines=max_lines)
        if isinstance(result, Evidence):
            verified.append(result)
        else:
            unverified.append(result)
    return tuple(verified), tuple(unverified)
