"""Pure helpers that turn stored records into things a console page can show safely.

Everything here returns plain values (frozen dataclasses, strings); the templates escape them.
The one exception is `loss_plot_svg`, which builds SVG markup itself — from numbers only, so no
submitted text can reach it. Submitted code and LLM output are hostile: nothing from them is
ever marked safe.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

REDACTED = "[redacted]"
# Bounds that keep a hostile record from making a page huge or slow.
MAX_DIFF_ROWS = 2000
MAX_PLOT_POINTS = 2000
MAX_JSON_CHARS = 200_000
SNIPPET_SEARCH_LINES = 40
SNIPPET_SEARCH_HASHES = 4000


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every known secret in `text`; longest first so one secret inside another goes too."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def pretty_json(value: Any) -> str:
    """A record as indented JSON text (escaped later by the template), cut at a bound."""
    text = json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    if len(text) > MAX_JSON_CHARS:
        return text[:MAX_JSON_CHARS] + f"\n… cut at {MAX_JSON_CHARS} characters"
    return text


# -- code excerpts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExcerptLine:
    number: int
    text: str
    cited: bool


@dataclass(frozen=True, slots=True)
class Excerpt:
    path: str
    lines: tuple[ExcerptLine, ...]
    # Where the evidence's snippet hash was found in the stored source, or None if it was not.
    snippet_lines: tuple[int, int] | None
    missing: str = ""


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def locate_snippet(lines: Sequence[str], line: int, column: int, sha256: str) -> tuple[int, int] | None:
    """Lines `line..end` whose text hashes to `sha256`: the whole line(s), or a source segment that
    starts at `column` (what the static review hashes). Bounded, so a long file costs little."""
    if not sha256 or not 0 < line <= len(lines):
        return None
    budget = SNIPPET_SEARCH_HASHES
    first = lines[line - 1]
    for end in range(line, min(len(lines), line + SNIPPET_SEARCH_LINES) + 1):
        whole = "\n".join(lines[line - 1 : end])
        if _hash(whole) == sha256 or _hash(whole.strip()) == sha256:
            return (line, end)
        middle = [first[column:], *lines[line : end - 1]] if end > line else []
        last = lines[end - 1]
        start_col = column if end == line else 0
        for stop in range(len(last), start_col, -1):
            budget -= 1
            if budget <= 0:
                return None
            piece = last[start_col:stop]
            segment = "\n".join([*middle, piece]) if end > line else piece
            if _hash(segment) == sha256:
                return (line, end)
    return None


def excerpt(
    files: Mapping[str, str],
    path: str,
    line: int,
    *,
    end_line: int | None = None,
    column: int = 0,
    sha256: str = "",
    context: int = 3,
) -> Excerpt:
    """The cited line(s) with `context` lines around them, from the stored source snapshot."""
    text = files.get(path)
    if text is None:
        return Excerpt(path, (), None, missing=f"{path} is not in the stored source")
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return Excerpt(path, (), None, missing=f"line {line} is outside {path} ({len(lines)} lines)")
    located = locate_snippet(lines, line, column, sha256)
    last = max(line, min(end_line or line, len(lines)))
    if located is not None:
        last = max(last, located[1])
    last = min(last, line + 60)  # a claim spanning a whole file still gives a readable excerpt
    lo, hi = max(1, line - context), min(len(lines), last + context)
    shown = tuple(ExcerptLine(n, lines[n - 1], line <= n <= last) for n in range(lo, hi + 1))
    return Excerpt(path, shown, located)


# -- the loss curve ---------------------------------------------------------------------------------


def numbers(value: Any) -> list[float]:
    """A list of finite numbers out of whatever a record holds there; anything else gives []."""
    if not isinstance(value, list):
        return []
    out: list[float] = []
    for item in value[: MAX_PLOT_POINTS * 50]:
        if isinstance(item, bool) or not isinstance(item, int | float):
            return []
        if math.isfinite(item):
            out.append(float(item))
    return out


def _downsample(values: Sequence[float]) -> list[tuple[int, float]]:
    if len(values) <= MAX_PLOT_POINTS:
        return list(enumerate(values))
    step = len(values) / MAX_PLOT_POINTS
    return [(int(i * step), values[int(i * step)]) for i in range(MAX_PLOT_POINTS)] + [(len(values) - 1, values[-1])]


def loss_plot_svg(values: Sequence[float], *, width: int = 640, height: int = 220, label: str = "loss") -> Markup:
    """An inline SVG line plot. Built from numbers only; `label` is escaped."""
    points = _downsample(values)
    if len(points) < 2:
        return Markup("")
    pad_left, pad_right, pad_top, pad_bottom = 56, 12, 12, 28
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_max = max(xs) or 1
    y_min, y_max = min(ys), max(ys)
    if y_max - y_min < 1e-12:
        y_min, y_max = y_min - 0.5, y_max + 0.5
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom

    def sx(x: float) -> float:
        return pad_left + plot_w * x / x_max

    def sy(y: float) -> float:
        return pad_top + plot_h * (1 - (y - y_min) / (y_max - y_min))

    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(points))
    ticks = []
    for frac in (0.0, 0.5, 1.0):
        value = y_min + (y_max - y_min) * frac
        ticks.append(
            f'<text x="{pad_left - 6}" y="{sy(value) + 4:.1f}" text-anchor="end">{value:.4g}</text>'
            f'<line x1="{pad_left}" x2="{width - pad_right}" y1="{sy(value):.1f}" y2="{sy(value):.1f}" class="grid"/>'
        )
    return Markup(
        '<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'role="img" aria-label="{label}">{ticks}'
        '<text x="{mid:.1f}" y="{h}" text-anchor="middle" dy="-6">step (0 … {last})</text>'
        '<path d="{path}" class="line"/></svg>'
    ).format(
        w=width,
        h=height,
        label=label,
        ticks=Markup("".join(ticks)),  # noqa: S704 - built above from numbers only
        mid=pad_left + plot_w / 2,
        last=xs[-1],
        path=path,
    )


# -- side-by-side diff ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiffRow:
    kind: str  # equal | replace | delete | insert | skip
    left_no: int | None
    left: str
    right_no: int | None
    right: str


@dataclass(frozen=True, slots=True)
class FileDiff:
    left_path: str | None
    right_path: str | None
    rows: tuple[DiffRow, ...]
    ratio: float


def _rows(left: list[str], right: list[str], context: int) -> list[DiffRow]:
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        if rows:
            rows.append(DiffRow("skip", None, "", None, ""))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows.extend(
                    DiffRow("equal", i + 1, left[i], j + 1, right[j])
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                )
                continue
            span = max(i2 - i1, j2 - j1)
            for k in range(span):
                i, j = i1 + k, j1 + k
                rows.append(
                    DiffRow(
                        tag,
                        i + 1 if i < i2 else None,
                        left[i] if i < i2 else "",
                        j + 1 if j < j2 else None,
                        right[j] if j < j2 else "",
                    )
                )
    return rows


def diff_projects(left: Mapping[str, str], right: Mapping[str, str], *, context: int = 3) -> list[FileDiff]:
    """Per-file side-by-side diffs. Files are paired by path; a file on one side only is paired
    with the other side's most similar unpaired file, so a renamed copy still lines up."""
    pairs: list[tuple[str | None, str | None]] = [(p, p) for p in sorted(left) if p in right]
    only_left = [p for p in sorted(left) if p not in right]
    only_right = [p for p in sorted(right) if p not in left]
    for path in only_left:
        best, best_ratio = None, 0.3
        for other in only_right:
            ratio = difflib.SequenceMatcher(None, left[path], right[other], autojunk=False).quick_ratio()
            if ratio > best_ratio:
                best, best_ratio = other, ratio
        if best is not None:
            only_right.remove(best)
        pairs.append((path, best))
    pairs.extend((None, path) for path in only_right)
    out: list[FileDiff] = []
    budget = MAX_DIFF_ROWS
    for lp, rp in pairs:
        a = left[lp].splitlines() if lp is not None else []
        b = right[rp].splitlines() if rp is not None else []
        ratio = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
        rows = _rows(a, b, context) if budget > 0 else []
        if len(rows) > budget:
            rows = [*rows[:budget], DiffRow("skip", None, f"… cut at {MAX_DIFF_ROWS} rows", None, "")]
        budget -= len(rows)
        out.append(FileDiff(lp, rp, tuple(rows), ratio))
    return out


# -- Mermaid -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Diagram:
    stage: str
    label: str
    text: str


def mermaid_diagrams(stage: str, data: Mapping[str, Any]) -> list[Diagram]:
    """The review's diagrams: one per chunk when chunks carry them (each renders on its own),
    else the record's top-level `mermaid`. Records are read defensively: wrong types are skipped."""
    found: list[Diagram] = []
    chunks = data.get("chunks")
    if isinstance(chunks, list):
        for position, chunk in enumerate(chunks):
            if isinstance(chunk, Mapping) and isinstance(chunk.get("mermaid"), str) and chunk["mermaid"].strip():
                index = chunk.get("index", position)
                number = index + 1 if isinstance(index, int) else position + 1
                found.append(Diagram(stage, f"part {number} of {len(chunks)}", chunk["mermaid"]))
    if not found and isinstance(data.get("mermaid"), str) and data["mermaid"].strip():
        found.append(Diagram(stage, "", data["mermaid"]))
    return found
