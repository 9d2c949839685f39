"""The model process's jail on this kernel: Landlock paths, the seccomp allowlist, the sealed exec.

Each test starts a bare interpreter through `python -m prism.evaluation.jail` (no torch: fast)
and looks at what it could and could not do, and how it ended.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from prism.evaluation import allowlist, landlock
from prism.evaluation.jail import EXIT_WALL_MISSING

SRC = Path(__file__).resolve().parents[2] / "src"
pytestmark = pytest.mark.skipif(landlock.abi_version() < 6, reason="needs Landlock ABI 6 (scoped signals)")


def _jailed(
    tmp_path: Path, code: str, *, require: bool = True, arch: str | None = None
) -> tuple[int, str, dict[str, Any]]:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    status_r, status_w = os.pipe()
    config = {
        "status_fd": status_w,
        "require": require,
        "read": [sys.base_prefix, sys.prefix, str(SRC), "/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache"],
        "write": [str(scratch)],
        "devices": ["/dev/null"],
        "rlimits": {"RLIMIT_CORE": [0, 0]},
        **({"arch": arch} if arch else {}),
    }
    proc = subprocess.run(
        [sys.executable, "-S", "-B", "-m", "prism.evaluation.jail", json.dumps(config), "--",
         sys.executable, "-S", "-B", "-c", code],
        pass_fds=(status_w,), capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(SRC), "HOME": str(scratch)}, cwd="/",
    )  # fmt: skip
    os.close(status_w)
    with os.fdopen(status_r) as handle:
        lines = handle.read().splitlines()
    return proc.returncode, proc.stdout + proc.stderr, json.loads(lines[-1]) if lines else {}


def test_walls_are_reported_and_paths_beyond_them_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "data.bin"
    secret.write_bytes(b"next bytes")
    code = (
        "import os\n"
        f"for p in ({str(secret)!r}, '/proc/1/environ', '/proc/1/fd/1', '/etc/passwd'):\n"
        "    try: open(p).read(); print('READ', p)\n"
        "    except OSError as e: print('denied', e.errno)\n"
        f"open({str(tmp_path / 'scratch' / 'ok')!r}, 'w').write('x'); print('scratch ok')\n"
        f"try: open({str(tmp_path / 'elsewhere')!r}, 'w'); print('WROTE')\n"
        "except OSError as e: print('denied', e.errno)\n"
    )
    code_rc, out, status = _jailed(tmp_path, code)
    assert code_rc == 0, out
    assert status["ok"] and status["landlock_scoped"] and status["seccomp"] == "allowlist" and not status["missing"]
    assert "READ" not in out and "WROTE" not in out
    assert out.count("denied 13") == 5 and "scratch ok" in out


@pytest.mark.parametrize(
    "attack",
    [
        "import os; os.fork()",
        "import os; os.kill(1, 0)",
        "import os; os.kill(os.getppid(), 19)",
        "import ctypes; ctypes.CDLL(None).syscall(434, 1, 0)",  # pidfd_open(1)
        "import ctypes; ctypes.CDLL(None).syscall(101, 16, 1, 0, 0)",  # ptrace(PTRACE_ATTACH, 1)
    ],
)
def test_forbidden_calls_kill_the_process(tmp_path: Path, attack: str) -> None:
    code_rc, out, _ = _jailed(tmp_path, attack + "\nprint('SURVIVED')")
    assert code_rc == -signal.SIGSYS, out
    assert "SURVIVED" not in out


def test_sockets_of_every_family_are_refused(tmp_path: Path) -> None:
    code = (
        "import socket\n"
        "for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK):\n"
        "    try: socket.socket(family); print('SOCKET', family)\n"
        "    except OSError as e: print('refused', e.errno)\n"
    )
    code_rc, out, _ = _jailed(tmp_path, code)
    assert code_rc == 0, out
    assert out.count("refused 1") == 4 and "SOCKET" not in out


def test_threads_and_signals_to_itself_still_work(tmp_path: Path) -> None:
    code = (
        "import os, threading, signal\n"
        "t = threading.Thread(target=lambda: print('thread ran')); t.start(); t.join()\n"
        "signal.signal(signal.SIGUSR1, lambda *a: print('got my own signal'))\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
    )
    code_rc, out, _ = _jailed(tmp_path, code)
    assert code_rc == 0, out
    assert "thread ran" in out and "got my own signal" in out


def test_sealed_process_cannot_execute(tmp_path: Path) -> None:
    code = (
        "from prism.evaluation import jail\n"
        "jail.seal()\n"
        "import os\n"
        "try: os.execv('/bin/true', ['true'])\n"
        "except OSError as e: print('exec refused', e.errno)\n"
    )
    code_rc, out, _ = _jailed(tmp_path, code)
    assert code_rc == 0, out
    assert "exec refused 1" in out


def test_a_required_wall_that_cannot_be_built_fails_closed(tmp_path: Path) -> None:
    # No syscall table for the architecture: an official run refuses to start the model at all.
    code_rc, out, status = _jailed(tmp_path, "print('RAN')", arch="mips")
    assert code_rc == EXIT_WALL_MISSING and "RAN" not in out
    assert status["ok"] is False and "seccomp allowlist" in status["error"]
    # A non-official run goes on and says which wall is missing.
    code_rc, out, status = _jailed(tmp_path, "print('RAN')", arch="mips", require=False)
    assert code_rc == 0 and "RAN" in out
    assert status["ok"] and any("seccomp" in m for m in status["missing"])


def test_the_filter_checks_its_architecture_first() -> None:
    for arch in ("x86_64", "aarch64"):
        program = allowlist.build_allowlist(4242, allow_exec=False, arch=arch)
        code, _, _, k = struct.unpack_from("<HBBI", program, 0)
        assert (code, k) == (0x20, 4)  # load seccomp_data.arch before anything else
        assert struct.unpack_from("<HBBI", program, 8)[3] == allowlist.AUDIT_ARCH[arch]
    with pytest.raises(allowlist.FilterUnavailable):
        allowlist.build_allowlist(1, allow_exec=True, arch="mips")
