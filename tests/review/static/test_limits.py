"""Linear cost and per-project budgets: hostile size gets a verdict, not a hung worker."""

from __future__ import annotations

from prism.intake.project import Project
from prism.review.static import StaticPolicy, review_project

CONTRACT = "def build_model(ctx):\n    return None\n"


def _findings_heavy(size: int) -> str:
    unit = "def f{i}(x):\n    return eval(x).__class__.__globals__['os']._exit(getattr(x, x))\n"
    parts: list[str] = []
    total = 0
    while total < size:
        parts.append(unit.format(i=len(parts)))
        total += len(parts[-1])
    return "".join(parts)


def test_a_mebibyte_of_findings_gets_a_capped_verdict() -> None:
    # 1 MiB where every line breaks several rules: the review lists at most the cap and stops
    # there (it took minutes when each finding re-split the file; benchmarks time it).
    text = _findings_heavy(1 << 20) + CONTRACT
    report = review_project(Project(files={"model.py": text}))
    assert not report.accepted
    assert len(report.findings) == StaticPolicy().max_findings_per_file + 1
    assert any(f.rule_id == "static.findings_capped" for f in report.findings)


def test_past_the_deadline_the_project_is_too_complex() -> None:
    project = Project(files={"model.py": "import torch\n" + CONTRACT, "helper.py": "X = 1\n"})
    report = review_project(project, policy=StaticPolicy(deadline_s=0.0))
    assert [(f.rule_id, f.path) for f in report.findings] == [("static.too_complex", "model.py")]
    assert review_project(project).accepted


def test_string_literal_budget_is_per_project() -> None:
    # Each file stays within its own budget; together they carry more than the project may.
    policy = StaticPolicy(max_file_literal_bytes=4096, max_project_literal_bytes=8192)
    chunk = "".join(f"S{i} = '{'ab' * 500}'\n" for i in range(3))  # 3000 bytes per file
    files = {f"part{i}.py": chunk for i in range(4)}
    report = review_project(Project(files={"model.py": CONTRACT, **files}), policy=policy)
    budget = [f for f in report.findings if f.rule_id == "static.literal.project_budget"]
    assert len(budget) == 1 and budget[0].path == "part2.py"
    assert not {f.rule_id for f in report.findings} & {"static.literal.budget", "static.literal.size"}


def test_number_literal_budget_is_per_project() -> None:
    policy = StaticPolicy(max_file_literal_numbers=100, max_project_literal_numbers=250)
    chunk = "W = (" + ", ".join(str(i) for i in range(90)) + ")\n"
    files = {f"w{i}.py": chunk for i in range(3)}
    report = review_project(Project(files={"model.py": CONTRACT, **files}), policy=policy)
    budget = [f for f in report.findings if f.rule_id == "static.literal.project_budget"]
    assert [f.path for f in budget] == ["w2.py"]
    small = {f"w{i}.py": chunk for i in range(2)}
    assert review_project(Project(files={"model.py": CONTRACT, **small}), policy=policy).accepted
