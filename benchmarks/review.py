"""Static review throughput against bare `ast.parse` of the same files, in the same run.

Two projects. "benign": 30 realistic files, the benign red-team models (transformers, MoE,
convolutions, RNNs, a multi-file package), copied into two packages. "independent": ordinary
models the review was not tuned on, written in other styles (functional parameters, typed
configs, nn.Sequential only, einsum; `benchmarks/corpus/`, plus the similarity corpus of
`tests/review/corpus/` where present). Prints both timings and their ratio per project;
the target is that review costs at most 2x parsing. The two are timed alternately (best of
N each) in CPU time of this process, so that other processes on a busy machine do not count;
then again per project (best of N each, summed), a reading that moves less with the load.

`--corpus DIR` (repeatable) adds a project per directory: every `.py` file under it, each its
own single-file project `model.py`. The corpus of ordinary models written by others (256 files
of 21 public repositories: nanoGPT, minGPT, timm, x-transformers, vit-pytorch, fairseq, detr,
whisper, CLIP, mamba, pytorch/examples...) is listed in `benchmarks/others_corpus.txt` and
rebuilt by `benchmarks/fetch_corpus.py DIR`; it is not committed. Their files are not
submissions (no `build_model`, imports of their own packages), so the findings printed for a
corpus count by rule and leave out `contract.*`; `--findings` prints each one.

    .venv/bin/python benchmarks/review.py [--repeat N] [--corpus DIR ...] [--findings]
"""

from __future__ import annotations

import argparse
import ast
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from prism.intake.project import Project, ProjectConfig
from prism.review.static import review_project

ROOT = Path(__file__).resolve().parents[1]
BENIGN = ROOT / "tests" / "redteam" / "benign"
INDEPENDENT = (ROOT / "benchmarks" / "corpus", ROOT / "tests" / "review" / "corpus")
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


def build_independent() -> list[Project]:
    """Every ordinary model of the independent corpora, each its own project (a folder of
    `tests/review/corpus/` is one project; each file of `benchmarks/corpus/` is one)."""
    projects: list[Project] = []
    local, similarity = INDEPENDENT
    for path in sorted(local.glob("*.py")):
        projects.append(Project(files={"model.py": path.read_text(encoding="utf-8")}))
    for folder in sorted(p for p in similarity.iterdir() if p.is_dir()) if similarity.is_dir() else []:
        files = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.py"))}
        if "model.py" in files:
            projects.append(Project(files=files))
    return projects


def build_corpus(folder: Path) -> list[Project]:
    """Every `.py` file under `folder`, each its own single-file project."""
    return [
        Project(files={"model.py": path.read_text(encoding="utf-8", errors="replace")})
        for path in sorted(folder.rglob("*.py"))
    ]


def best_of_interleaved(repeat: int, first: Callable[[], object], second: Callable[[], object]) -> tuple[float, float]:
    """Best time of each of two functions, run alternately so both see the same machine load."""
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for slot, fn in enumerate((first, second)):
            start = time.process_time()
            fn()
            best[slot] = min(best[slot], time.process_time() - start)
    return best[0], best[1]


def report_findings(label: str, projects: list[Project], names: list[str] | None, every: bool) -> None:
    """Rejections of a submission-shaped project (first five findings each), or, for a corpus of
    others' files (`names` given), the count of files per rule with `contract.*` left out."""
    reports = [review_project(project) for project in projects]
    rejected = [(i, r) for i, r in enumerate(reports) if not r.accepted]
    if names is None:
        print(f"[{label}] rejected={len(rejected)}")
        for _, report in rejected:
            for finding in report.findings[:5]:
                print("  ", finding.rule_id, finding.path, finding.line, finding.explanation)
        return
    per_rule: Counter[str] = Counter()
    flagged = 0
    for i, report in rejected:
        findings = [f for f in report.findings if not f.rule_id.startswith("contract.")]
        flagged += bool(findings)
        per_rule.update({f.rule_id for f in findings})
        for finding in findings if every else []:
            print(f"   {names[i]}:{finding.line} {finding.rule_id} {finding.explanation}")
    print(f"[{label}] files with a finding other than contract.*: {flagged}")
    for rule, count in per_rule.most_common():
        print(f"   {count:4d} files  {rule}")


def measure(label: str, projects: list[Project], repeat: int) -> float:
    texts = [t for project in projects for t in project.python_files.values()]
    lines = sum(t.count("\n") for t in texts)
    print(f"[{label}] {len(projects)} projects, {len(texts)} files, {lines} lines")

    def parse_all() -> None:
        for text in texts:
            ast.parse(text)

    def review_all() -> None:
        for project in projects:
            review_project(project)

    parse, review = best_of_interleaved(repeat, parse_all, review_all)
    print(f"[{label}] ast.parse only : {parse * 1000:8.2f} ms")
    print(f"[{label}] review_project : {review * 1000:8.2f} ms (includes its own parse)")
    print(f"[{label}] ratio          : {review / parse:8.2f}x  (target <= 2.0x)")
    # The same comparison per project (each a few ms), best of N each, summed: a load spike
    # spoils one short run, not the whole set's, so this reading moves less with the host's load.
    parse_sum = review_sum = 0.0
    for project in projects:
        files = list(project.python_files.values())

        def parse_one(files: list[str] = files) -> None:
            for text in files:
                ast.parse(text)

        def review_one(project: Project = project) -> None:
            review_project(project)

        one_parse, one_review = best_of_interleaved(repeat, parse_one, review_one)
        parse_sum += one_parse
        review_sum += one_review
    print(f"[{label}] per project    : {review_sum / parse_sum:8.2f}x  (best of {repeat} per project, summed)")
    return review / parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--corpus", type=Path, action="append", default=[], help="a folder of others' models")
    parser.add_argument("--findings", action="store_true", help="print every finding on a --corpus file")
    args = parser.parse_args()
    benign, independent = [build_project()], build_independent()
    report_findings("benign", benign, None, False)
    measure("benign", benign, args.repeat)
    report_findings("independent", independent, None, False)
    measure("independent", independent, args.repeat)
    for folder in args.corpus:
        projects = build_corpus(folder)
        names = [p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*.py"))]
        report_findings(folder.name, projects, names, args.findings)
        measure(folder.name, projects, args.repeat)


if __name__ == "__main__":
    main()
