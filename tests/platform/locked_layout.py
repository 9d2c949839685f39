"""Write a directory in Platform's staged locked-data layout, as the reference evaluator's
`evaluator/dataset.py` writes it (shape read from there, not copied): MANIFEST.json
(`prism_locked_data.v1`, sorted keys, indent 2) and `<split>/<split>-NNNNN.jsonl` shards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prism.evaluation.platform_data import FINEWEB_EDU_PIN

WORDS = tuple(
    [
        "the",
        "model",
        "learns",
        "which",
        "byte",
        "comes",
        "next",
        "from",
        "what",
        "came",
        "before",
        "and",
        "is",
        "scored",
        "in",
        "bits",
        "per",
        "byte",
    ]
)


def _document(index: int) -> str:
    return " ".join(WORDS[(index * 7 + k) % len(WORDS)] for k in range(40 + index % 13)) + "."


def write_platform_layout(root: Path, *, docs: dict[str, int], pin: str = FINEWEB_EDU_PIN, per_shard: int = 64) -> Path:
    root.mkdir(parents=True)
    splits: dict[str, object] = {}
    counter = 0
    for split, count in docs.items():
        (root / split).mkdir()
        shards = []
        for shard_index, start in enumerate(range(0, count, per_shard)):
            lines = []
            for _ in range(min(per_shard, count - start)):
                lines.append(json.dumps({"id": f"doc-{counter}", "text": _document(counter)}, sort_keys=True))
                counter += 1
            data = ("\n".join(lines) + "\n").encode()
            rel = f"{split}/{split}-{shard_index:05d}.jsonl"
            (root / rel).write_bytes(data)
            shards.append(
                {
                    "path": rel,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                    "doc_count": len(lines),
                    "token_count": len(data),
                }
            )
        fingerprint = hashlib.sha256(
            json.dumps({"split": split, "shard_sha256": [s["sha256"] for s in shards]}, sort_keys=True).encode()
        ).hexdigest()
        splits[split] = {
            "doc_count": count,
            "token_count": sum(int(str(s["token_count"])) for s in shards),
            "byte_count": sum(int(str(s["bytes"])) for s in shards),
            "fingerprint": fingerprint,
            "shards": shards,
        }
    manifest = {
        "schema_version": "prism_locked_data.v1",
        "dataset": {"name": "HuggingFaceFW/fineweb-edu", "pin_sha": pin, "license": "odc-by"},
        "partition": {"hash": "sha256", "key": "doc.id", "modulus": 1000},
        "tokenizer": {"id": "bytes", "fingerprint": "none"},
        "splits": splits,
    }
    (root / "MANIFEST.json").write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    return root
