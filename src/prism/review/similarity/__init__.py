"""Duplicate review: source and architecture-graph similarity (see docs/similarity.md).

The public face: fingerprints (`fingerprint_project`, `graph_fingerprint`) and the decisions
(`decide_source`, `decide_graph`, `DuplicateReport`). Behind it: `normalize`, `rewrite`,
`rename`, `equivalences` (the table of equivalent forms), `hashing`, `boilerplate`, `graph`,
`fingerprint`, `duplicates`, `errors`.
"""

from prism.review.similarity.duplicates import (
    Candidate,
    CandidateScore,
    DuplicateReport,
    GraphPrior,
    decide_graph,
    decide_source,
)
from prism.review.similarity.errors import FingerprintError, SimilarityError
from prism.review.similarity.fingerprint import (
    FINGERPRINT_VERSION,
    Region,
    SourceFingerprint,
    assemble_fingerprint,
    containment,
    fingerprint_files,
    fingerprint_project,
)
from prism.review.similarity.graph import GraphFingerprint, graph_fingerprint, graph_similarity

__all__ = [
    "FINGERPRINT_VERSION",
    "Candidate",
    "CandidateScore",
    "DuplicateReport",
    "FingerprintError",
    "GraphFingerprint",
    "GraphPrior",
    "Region",
    "SimilarityError",
    "SourceFingerprint",
    "assemble_fingerprint",
    "containment",
    "decide_graph",
    "decide_source",
    "fingerprint_files",
    "fingerprint_project",
    "graph_fingerprint",
    "graph_similarity",
]
