"""`prism sandbox check`: prove on this host that the configured backend contains a hostile job.

Each check runs a small hostile payload through the real backend and judges what came back.
The payloads are fixed text owned by PRISM; nothing here reads submitted code.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prism.config import Settings
from prism.sandbox.errors import SandboxError
from prism.sandbox.spec import SUBMISSION_MOUNT, Limits, Mount, RunResult, RunSpec, Sandbox


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class _Check:
    name: str
    code: str
    judge: Callable[[RunResult], tuple[bool, str]]
    limits: Limits


def _checks(host_secret: str, secret_file: Path, data_dir: Path, port: int) -> list[_Check]:
    small = Limits(memory_bytes=256 << 20, memory_swap_bytes=256 << 20, pids=64, timeout_seconds=20)
    return [
        _Check(
            "network blocked",
            "import socket\n"
            f"try: socket.create_connection(('127.0.0.1', {port}), timeout=2); print('REACHED')\n"
            "except OSError: print('blocked')\n"
            "try: socket.getaddrinfo('pypi.org', 443); print('RESOLVED')\n"
            "except OSError: print('no dns')\n",
            lambda r: (r.stdout.splitlines() == ["blocked", "no dns"], r.stdout.strip()[-200:].replace("\n", "; ")),
            small,
        ),
        _Check(
            "host secrets invisible",
            "import os\n"
            f"seen = [p for p in ({str(secret_file)!r}, '/etc/shadow', '/root/.ssh') if os.path.exists(p)]\n"
            "env = open('/proc/self/environ').read() + open('/proc/1/environ', errors='replace').read()\n"
            f"print('LEAK' if seen or {host_secret!r} in env else 'clean', seen)\n",
            lambda r: (r.stdout.startswith("clean"), r.stdout.strip()[-200:]),
            small,
        ),
        _Check(
            "service data invisible",
            f"import os\nprint('VISIBLE' if os.path.exists({str(data_dir)!r}) else 'hidden')\n",
            lambda r: (r.stdout.strip() == "hidden", r.stdout.strip()[-200:]),
            small,
        ),
        _Check(
            "writes outside /artifacts refused",
            "ok = []\n"
            "for p in ('/submission/x', '/x', '/usr/x'):\n"
            "    try: open(p, 'w').write('x'); ok.append(p)\n"
            "    except OSError: pass\n"
            "open('/artifacts/ok', 'w').write('ok')\n"
            "print('WROTE', ok) if ok else print('refused')\n",
            lambda r: (r.stdout.strip() == "refused" and r.artifacts.get("ok") == b"ok", r.stdout.strip()[-200:]),
            small,
        ),
        _Check(
            "fork bomb contained",
            "import os, time\nn = 0\ntry:\n    while n < 100000:\n"
            "        if os.fork() == 0: time.sleep(30); os._exit(0)\n"
            "        n += 1\nexcept OSError: print('contained', n)\n",
            lambda r: (r.stdout.startswith("contained"), r.stdout.strip()[-200:]),
            small,
        ),
        _Check(
            "memory bomb killed",
            "x = b'x' * (2 << 30)\nprint('ALLOCATED')\n",
            lambda r: (r.oom_killed and "ALLOCATED" not in r.stdout, f"oom_killed={r.oom_killed} exit={r.exit_code}"),
            small,
        ),
        _Check(
            "timeout kills the tree",
            "import os, time\nos.fork() or time.sleep(0)\nwhile True: pass\n",
            lambda r: (
                r.timed_out and r.duration_seconds < 15,
                f"timed_out={r.timed_out} after {r.duration_seconds:.1f}s",
            ),
            Limits(memory_bytes=256 << 20, memory_swap_bytes=256 << 20, pids=64, timeout_seconds=2),
        ),
    ]


def run_checks(sandbox: Sandbox, settings: Settings) -> list[CheckResult]:
    work = Path(tempfile.mkdtemp(prefix="prism-check-"))
    listener = socket.socket()
    try:
        work.chmod(0o755)
        project = work / "project"
        project.mkdir(mode=0o755)
        (project / "model.py").write_text("x = 1\n")
        secret_file = work / "host-secret"
        host_secret = secrets.token_hex(16)
        secret_file.write_text(host_secret)
        secret_file.chmod(0o644)
        os.environ["PRISM_SELFTEST_SECRET"] = host_secret
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        results = []
        for index, check in enumerate(
            _checks(host_secret, secret_file, settings.data_dir.resolve(), listener.getsockname()[1])
        ):
            artifacts = work / f"artifacts-{index}"
            artifacts.mkdir()
            spec = RunSpec(
                command=("python3", "-c", check.code),
                mounts=(Mount(project, SUBMISSION_MOUNT),),
                artifacts_dir=artifacts,
                limits=check.limits,
                labels={"job_id": f"selftest-{index}"},
            )
            try:
                passed, detail = check.judge(sandbox.run(spec))
            except SandboxError as exc:
                passed, detail = False, f"{type(exc).__name__}: {exc}"
            results.append(CheckResult(check.name, passed, detail))
        return results
    finally:
        os.environ.pop("PRISM_SELFTEST_SECRET", None)
        listener.close()
        shutil.rmtree(work, ignore_errors=True)
