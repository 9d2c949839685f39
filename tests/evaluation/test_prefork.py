"""Model processes forked from the recorder before it reads a secret: same walls, nothing inherited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import EXAMPLE, HarnessRunner

pytestmark = pytest.mark.slow

# What a forked model's process holds when its code first runs: every descriptor and where it
# leads, and what stdin (the recorder's, which carried the report key) still has to give.
LOOK_AROUND = """
import os, stat

def build_model(ctx):
    fds = []
    for fd in range(1024):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        kind = "fifo" if stat.S_ISFIFO(st.st_mode) else "chr" if stat.S_ISCHR(st.st_mode) else "other"
        fds.append((fd, f"{kind}:{st.st_dev}:{st.st_ino}"))
    raise RuntimeError(f"INHERITED stdin={os.read(0, 100)!r} fds={fds!r}")
"""


def test_the_forked_and_the_execd_model_process_get_the_same_walls(run_harness: HarnessRunner) -> None:
    forked = run_harness("inspect", EXAMPLE)
    execd = run_harness("inspect", EXAMPLE, hash_seed=None)
    assert forked["status"] == execd["status"] == "ok", (forked, execd)
    walls, fallback = dict(forked["figures"]["walls"]), dict(execd["figures"]["walls"])
    assert walls.pop("started") == "fork" and fallback.pop("started") == "exec"
    assert walls == fallback and walls["seccomp"] == "allowlist" and walls["no_new_privs"] is True
    # The same model measured the same way, whichever way its process started.
    for key in ("architecture_graph_hash", "parameter_count", "flops_per_token"):
        assert forked["figures"][key] == execd["figures"][key]


def test_a_forked_model_process_inherits_no_descriptor_but_its_pipes(
    run_harness: HarnessRunner, tmp_path: Path
) -> None:
    project = tmp_path / "look-around"
    project.mkdir()
    (project / "model.py").write_text(LOOK_AROUND)
    report = run_harness("inspect", project)
    assert report["status"] == "failed" and report["reason_code"] == "miner_exception", report
    found = re.search(r"INHERITED stdin=(b'[^']*') fds=(\[.*?\])(?:'|\"|$)", report["detail"])
    assert found, report["detail"]
    assert found.group(1) == "b''"  # /dev/null: the key, still unread in the recorder's stdin, is out of reach
    fds = dict(eval(found.group(2)))  # noqa: S307 - a list of (int, str) pairs this test's model printed
    assert fds[0].startswith("chr:") and fds[1] == fds[2]  # /dev/null; stdout is the recorder's stderr
    others = {fd: target for fd, target in fds.items() if fd > 2}
    # Its two channel pipes and nothing else: no report stream, no key pipe, no file of the recorder.
    assert len(others) == 2 and len(set(others.values())) == 2, fds
    assert all(target.startswith("fifo:") and target != fds[1] for target in others.values()), fds
