"""Job ids, output tails, sizes, spec validation and cgroup detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from prism.sandbox import cgroups
from prism.sandbox.errors import SandboxSpecRejected, SandboxUnavailable
from prism.sandbox.jobs import job_id_for
from prism.sandbox.output import TailBuffer
from prism.sandbox.sizes import format_size, parse_size
from prism.sandbox.spec import Mount, RunSpec
from prism.sandbox.validate import check_spec


def test_job_ids_are_deterministic_and_distinct() -> None:
    assert job_id_for("s1", 0, "train") == job_id_for("s1", 0, "train")
    assert len({job_id_for("s1", 0, "train"), job_id_for("s1", 1, "train"), job_id_for("s2", 0, "train"),
                job_id_for("s1", 0, "heldout")}) == 4  # fmt: skip
    assert job_id_for("s1", 0, "train").startswith("prism-train-")
    for bad in (("", 0, "train"), ("s", -1, "train"), ("s", True, "train"), ("s", 0, "Train; rm")):
        with pytest.raises(SandboxSpecRejected):
            job_id_for(*bad)


def test_tail_buffer_keeps_the_end_and_redacts_across_chunks() -> None:
    tail = TailBuffer(16, slack=8)
    for chunk in (b"a" * 1000, b"xxSEC", b"RETyy", b"end"):
        tail.feed(chunk)
    text = tail.text(["SECRET"])
    assert tail.total == 1013 and tail.truncated
    assert "SEC" not in text and "[REDACTED]" in text
    assert text.endswith("yyend")


def test_sizes() -> None:
    assert parse_size("512m") == 512 << 20 and parse_size("4G") == 4 << 30 and parse_size("1.5GiB") == 3 << 29
    assert format_size(512 << 20) == "512m" and format_size(1000) == "1000b"
    for bad in ("", "lots", "-1g", "0"):
        with pytest.raises(SandboxSpecRejected):
            parse_size(bad)


def test_spec_refusals(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    pycache = tmp_path / "sub" / "__pycache__"
    pycache.mkdir(parents=True)
    (tmp_path / "sub").chmod(0o755)
    with pytest.raises(SandboxSpecRejected, match="bytecode"):
        check_spec(RunSpec(command=("true",), mounts=(Mount(tmp_path / "sub", "/submission"),)))
    for target in ("/usr", "/opt/prism/src", "relative", "/a/../etc", "/proc/x"):
        with pytest.raises(SandboxSpecRejected):
            check_spec(RunSpec(command=("true",), mounts=(Mount(tmp_path, target),)))
    with pytest.raises(SandboxSpecRejected):
        check_spec(RunSpec(command=()))
    with pytest.raises(SandboxSpecRejected):
        check_spec(RunSpec(command=("true",), env={"BAD NAME": "x"}))
    full = tmp_path / "artifacts"
    full.mkdir()
    (full / "old").write_text("x")
    with pytest.raises(SandboxSpecRejected, match="empty"):
        check_spec(RunSpec(command=("true",), artifacts_dir=full))


def test_missing_cgroup_controllers_refuse_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "_mountinfo", lambda: [("/", "/sys/fs/cgroup/memory", "cgroup", "rw,memory")])
    with pytest.raises(SandboxUnavailable, match="pids, cpu"):
        cgroups.detect_layout()
