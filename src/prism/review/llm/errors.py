"""Errors of the LLM policy review; the tree below is the whole family.

    PrismError
    └── LlmReviewError                 the review could not produce a verdict this attempt
        ├── LlmProviderError           transport, timeout, HTTP status, unreadable body
        └── LlmProtocolError           the model broke the tool protocol
            ├── LlmOrderingError       submit_verdict came before a valid submit_mermaid
            └── LlmMermaidError        the Mermaid text failed the syntax check

`llm_client.py` translates the `openai` SDK's exceptions into `LlmProviderError` at the boundary.
Messages are redacted of known secrets before they are built, so an error can be logged or stored.
Configuration problems raise `prism.errors.ConfigError` like the rest of PRISM.
"""

from __future__ import annotations

from prism.errors import PrismError


class LlmReviewError(PrismError):
    """One review attempt failed; the orchestrator retries and finally holds (or passes, if advisory)."""


class LlmProviderError(LlmReviewError):
    """The provider could not be reached or did not answer with a readable completion."""


class LlmProtocolError(LlmReviewError):
    """The model answered, but not through the tool protocol PRISM requires."""


class LlmOrderingError(LlmProtocolError):
    """A verdict arrived before a valid Mermaid diagram."""


class LlmMermaidError(LlmProtocolError):
    """The submitted Mermaid text is not a plausible diagram."""
