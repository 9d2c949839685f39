"""Static review throughput against bare `ast.parse` of the same files, in the same run.

The project is 30 realistic files: the benign red-team models (transformers, MoE, convolutions,
RNNs, a multi-file package), copied into two packages. Prints both timings and their ratio;
the target is that review costs at most 2x parsing. The two are timed alternately (best of
N each) in CPU time of this process, so that other processes on a busy machine do not count.

    .venv/bin/python benchmarks/review.py [--repeat N]
"""

from __future__ import annotations

import argparse
import ast
import time
from collections.abc import Callable
from pathlib import Path

from prism.intake.project import Project, ProjectConfig
from prism.review.static import review_project

BENIGN = Path(__file__).resolve().parents[1] / "tests" / "redteam" / "benign"
TARGET_FILES = 30


def build_project() -> Project:
    """The multi-file package at the root, single-file models filling `zoo<N>/` up to 30 files."""
    package = BENIGN / "multifile_pkg"
    files = {
        p.relative_to(package).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(package.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
    singles = sorted(p for p in BENIGN.glob("*/model.py"))
    copy = 0
    while len([f for f in files if f.endswith(".py")]) < TARGET_FILES:
        for path in singles:
            if len([f for f in files if f.endswith(".py")]) >= TARGET_FILES:
                break
            files[f"zoo{copy}/{path.parent.name}.py"] = path.read_text(encoding="utf-8")
        copy += 1
    return Project(files=files, config=ProjectConfig(entrypoint="main.py"))


def best_of_interleaved(repeat: int, first: Callable[[], object], second: Callable[[], object]) -> tuple[float, float]:
    """Best time of each of two functions, run alternately so both see the same machine load."""
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for slot, fn in enumerate((first, second)):
            start = time.process_time()
            fn()
            best[slot] = min(best[slot], time.process_time() - start)
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    project = build_project()
    texts = list(project.python_files.values())
    lines = sum(t.count("\n") for t in texts)
    report = review_project(project)
    print(f"project: {len(texts)} files, {lines} lines, accepted={report.accepted}")
    if not report.accepted:
        for finding in report.findings[:10]:
            print("  ", finding.rule_id, finding.path, finding.line, finding.explanation)

    def parse_all() -> None:
        for text in texts:
            ast.parse(text)

    parse, review = best_of_interleaved(args.repeat, parse_all, lambda: review_project(project))
    print(f"ast.parse only : {parse * 1000:8.2f} ms")
    print(f"review_project : {review * 1000:8.2f} ms (includes its own parse)")
    print(f"ratio          : {review / parse:8.2f}x  (target <= 2.0x)")


if __name__ == "__main__":
    main()
