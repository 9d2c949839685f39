"""Errors of the similarity family (fingerprints, graph comparison, duplicate decisions).

PrismError
└── SimilarityError            base of this family
    ├── FingerprintError       a project could not be fingerprinted (unparsable Python)
    └── GraphFormatError       an architecture graph does not fit the adapter's form
"""

from __future__ import annotations

from prism.errors import PrismError
from prism.evidence import Evidence


class SimilarityError(PrismError):
    """Base of every error the similarity code raises on purpose."""


class FingerprintError(SimilarityError):
    """The project cannot be fingerprinted; carries the Evidence of where and why."""

    def __init__(self, evidence: Evidence) -> None:
        super().__init__(evidence.explanation)
        self.evidence = evidence


class GraphFormatError(SimilarityError):
    """An architecture graph document does not have the shape the adapter expects."""
