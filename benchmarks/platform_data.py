"""The train split read from Platform's mount against the same split staged: the recorder's cost.

A Platform layout of about `--megabytes` of JSONL text (documents of 1-6 KB, some non-ASCII) is
written and locked (`prism data lock`'s code). Then, in the same run, the recorder's `load_split`
reads the train split both ways, best of `--repeat`:

- staged (the baseline): PRISM's locked shards, each read and hashed;
- mounted: Platform's JSONL shards, each read and hashed, parsed into tokens by `jsonl_stream`,
  and the result hashed against the locked shards.

Printed: seconds and MB/s of tokens for each, and mounted / staged. The train phase does not
charge this time to the model (`phases.train` moves its deadline by the loading time).

    .venv/bin/python benchmarks/platform_data.py [--megabytes 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.platform.locked_layout import WORDS

from prism.evaluation import phases
from prism.evaluation.phase import ShardRef
from prism.evaluation.platform_data import FINEWEB_EDU_PIN, lock_platform_dataset, platform_source

EXTRA = ["naïve", "café", "Zürich", "—", "→", "数据", "µs"]


def _write_layout(root: Path, megabytes: int) -> None:
    rng = random.Random(0)
    splits: dict[str, object] = {}
    for split, share in (("train", 0.9), ("val", 0.1)):
        (root / split).mkdir(parents=True)
        shards, target, index = [], int(megabytes * share * 1024**2), 0
        while target > 0:
            lines, size = [], 0
            while size < 16 * 1024**2 and target - size > 0:
                words = rng.choices(
                    [*WORDS, *EXTRA], weights=[20] * len(WORDS) + [1] * len(EXTRA), k=rng.randint(150, 900)
                )
                line = json.dumps({"id": f"{split}-{index}-{len(lines)}", "text": " ".join(words)})
                lines.append(line)
                size += len(line) + 1
            data = ("\n".join(lines) + "\n").encode()
            rel = f"{split}/{split}-{index:05d}.jsonl"
            (root / rel).write_bytes(data)
            shards.append({"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
            target -= size
            index += 1
        splits[split] = {"shards": shards}
    manifest = {
        "schema_version": "prism_locked_data.v1",
        "dataset": {"name": "HuggingFaceFW/fineweb-edu", "pin_sha": FINEWEB_EDU_PIN, "license": "odc-by"},
        "splits": splits,
    }
    (root / "MANIFEST.json").write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")


def _best(repeat: int, load: object) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        load()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        _write_layout(root / "prep", args.megabytes)
        dataset = lock_platform_dataset(root / "prep", root / "locked")
        volume = root / "volume"
        shutil.copytree(root / "prep" / "train", volume)
        source = platform_source(dataset)
        assert source is not None
        shards = tuple(ShardRef(path=s.path, sha256=s.sha256, size=s.size) for s in dataset.manifest.split("train"))
        sources = tuple(ShardRef(path=s.name, sha256=s.sha256, size=s.size) for s in source.splits["train"])
        tokens = dataset.manifest.split_bytes("train") / 1e6
        jsonl = sum(s.size for s in sources) / 1e6
        staged = _best(args.repeat, lambda: phases.load_split(dataset.root, shards))
        mounted = _best(args.repeat, lambda: phases.load_split(volume, shards, sources))
        print(f"train split: {jsonl:.1f} MB of JSONL -> {tokens:.1f} MB of tokens, {len(sources)} Platform shards")
        print(f"staged  load_split: {staged:.3f} s  ({tokens / staged:.0f} MB/s of tokens)")
        print(f"mounted load_split: {mounted:.3f} s  ({tokens / mounted:.0f} MB/s of tokens)")
        print(f"mounted / staged: {mounted / staged:.2f}x")


if __name__ == "__main__":
    main()
