"""Evidence-gated LLM policy review (see docs/llm-review.md).

The public face: `review_project` and the values that cross its boundary. The modules behind it:
`review` (conversations and the combined outcome), `gate` (does a quote exist), `proof` (does it
prove the rule it names), `prompt`, `chunks`, `protocol`, `mermaid`, `client`, `config`,
`redact`, `transcript`, `types`, `errors`.
"""

from prism.review.llm.config import LlmReviewConfig, ReviewRule
from prism.review.llm.review import review_project
from prism.review.llm.types import (
    ClaimedEvidence,
    Finding,
    LlmReviewResult,
    ReviewContext,
    SimilarSource,
    TranscriptEntry,
)

__all__ = [
    "ClaimedEvidence",
    "Finding",
    "LlmReviewConfig",
    "LlmReviewResult",
    "ReviewContext",
    "ReviewRule",
    "SimilarSource",
    "TranscriptEntry",
    "review_project",
]
