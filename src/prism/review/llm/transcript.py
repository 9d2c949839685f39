"""The stored transcript of a review: redacted, capped per entry and in total, each entry hashed.

A reviewer (or a submission steering it) can answer with megabytes of tool arguments; stored raw,
one review once made a 16 MB stage record. Each entry keeps at most `MAX_ENTRY_CHARS` characters,
and a review at most `MAX_TRANSCRIPT_CHARS` in all (later entries keep only their hash and length),
with the SHA-256 and length of the whole redacted text, so what was cut is still identifiable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prism.evidence import sha256_text
from prism.review.llm.redact import redact
from prism.review.llm.types import TranscriptEntry

MAX_ENTRY_CHARS = 16_000
MAX_TRANSCRIPT_CHARS = 256_000


@dataclass
class Transcript:
    """Collects redacted, capped entries; the full prompt is kept once per part, not once per attempt."""

    secrets: tuple[str, ...]
    entries: list[TranscriptEntry] = field(default_factory=list)
    stored_chars: int = 0

    def add(self, chunk: int, attempt: int, role: str, content: str, name: str = "") -> None:
        text = redact(content, self.secrets)
        room = max(0, min(MAX_ENTRY_CHARS, MAX_TRANSCRIPT_CHARS - self.stored_chars))
        kept = text if len(text) <= room else text[:room] + f"\n[cut: {len(text) - room} more characters]"
        self.stored_chars += min(len(text), room)
        entry = TranscriptEntry(
            chunk, attempt, role, kept, name, chars=len(text), sha256=sha256_text(text), truncated=len(text) > room
        )
        self.entries.append(entry)
