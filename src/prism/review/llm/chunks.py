"""Split a project into parts that each fit one request, so that every line is reviewed.

Files are packed whole where they fit; a file too large for the room left starts a new part, and
a file too large for any part is split by line ranges. A single line longer than a whole part
(minified code, an embedded blob) is split into pieces marked as continued, so nothing is ever
cut off: the concatenation of all pieces is exactly the project, in order. Rendering adds the
line numbers the reviewer cites; fencing with the per-request boundary happens in `llm_prompt.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prism.errors import ConfigError
from prism.intake.project import Project
from prism.review.llm.gate import source_lines
from prism.review.llm.types import ChunkSpan

# Room the fence lines take around each piece, apart from the path (boundary, labels, counts).
FENCE_OVERHEAD = 200
# A part must hold at least this much code, or the prompt leaves too little room to review.
MIN_CODE_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class Piece:
    path: str
    line_start: int
    line_end: int
    total_lines: int
    body: str  # numbered lines, each ending in "\n"
    segment: tuple[int, int] | None = None  # (k, n): piece k of n of one over-long line

    @property
    def span(self) -> ChunkSpan:
        return ChunkSpan(self.path, self.line_start, self.line_end)


@dataclass(frozen=True, slots=True)
class Chunk:
    pieces: tuple[Piece, ...]

    @property
    def spans(self) -> tuple[ChunkSpan, ...]:
        return tuple(piece.span for piece in self.pieces)


def fence_cost(path: str) -> int:
    return FENCE_OVERHEAD + 2 * len(path)


@dataclass
class _Packer:
    budget: int
    chunks: list[Chunk] = field(default_factory=list)
    current: list[Piece] = field(default_factory=list)
    used: int = 0

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def close(self) -> None:
        if self.current:
            self.chunks.append(Chunk(tuple(self.current)))
        self.current, self.used = [], 0

    def add(self, piece: Piece) -> None:
        self.current.append(piece)
        self.used += fence_cost(piece.path) + len(piece.body)


def _render(number: int, width: int, text: str, marker: str = "|") -> str:
    return f"{number:>{width}} {marker} {text}\n"


def plan_chunks(project: Project, *, budget: int) -> tuple[Chunk, ...]:
    """Parts of at most `budget` characters of fenced, numbered code; every line in exactly one piece."""
    if budget < MIN_CODE_CHARS:
        raise ConfigError(
            f"llm_max_request_chars leaves {budget} characters for code after the prompt; at least "
            f"{MIN_CODE_CHARS} are needed (raise llm_max_request_chars or shorten the review rules)"
        )
    packer = _Packer(budget=budget)
    for path, text in project.files.items():
        lines = source_lines(text)
        width = len(str(len(lines)))
        rendered = [_render(n, width, line) for n, line in enumerate(lines, start=1)]
        whole = fence_cost(path) + sum(len(r) for r in rendered)
        if whole > packer.remaining and packer.current and whole <= budget:
            packer.close()
        _pack_file(packer, path, lines, rendered, width)
    packer.close()
    return tuple(packer.chunks)


def _pack_file(packer: _Packer, path: str, lines: list[str], rendered: list[str], width: int) -> None:
    total = len(lines)
    max_body = packer.budget - fence_cost(path)
    start, body = 1, ""

    def flush(end: int) -> None:
        nonlocal body
        if body:
            packer.add(Piece(path, start, end, total, body))
            body = ""

    for number, row in enumerate(rendered, start=1):
        if len(row) > max_body:
            flush(number - 1)
            _pack_long_line(packer, path, number, total, width, lines[number - 1])
            start = number + 1
            continue
        if fence_cost(path) + len(body) + len(row) > packer.remaining:
            flush(number - 1)
            packer.close()
        if not body:
            start = number
        body += row
    flush(total)


def _pack_long_line(packer: _Packer, path: str, number: int, total: int, width: int, line: str) -> None:
    size = packer.budget - fence_cost(path) - width - 8
    segments = [line[i : i + size] for i in range(0, len(line), size)]
    for k, segment in enumerate(segments, start=1):
        row = _render(number, width, segment, marker="|" if k == 1 else "~")
        if fence_cost(path) + len(row) > packer.remaining:
            packer.close()
        packer.add(Piece(path, number, number, total, row, segment=(k, len(segments))))
