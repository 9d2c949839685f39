"""`prism sandbox check`, the walls inside the sandbox: the model's jail, pid 1, the report MAC.

One run through the configured backend plays the recorder: it reads a key from stdin (as the
harness does), makes itself non-dumpable, leaves a secret in its own /tmp, and starts jailed
children through the real spawn path (`walls.spawn_jailed`) that try what a hostile model would:
read the secret, the sandbox's pid 1 and the recorder through /proc, write /artifacts, open a
socket, open a pidfd on pid 1, stop the recorder. Then it signs one report line. The host
checks that every attempt failed the way the wall says it should, and that the MAC verifies.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path

from prism.evaluation.phase import RESULT_PREFIX, verify_report_line
from prism.sandbox.errors import SandboxError
from prism.sandbox.selftest import CheckResult
from prism.sandbox.spec import SUBMISSION_MOUNT, Limits, Mount, RunSpec, Sandbox

FINDINGS_PREFIX = "PRISM_WALLS "

_FILES_CHILD = r"""
import json, os, sys
secret, recorder, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
result = {}
for name, path, mode in (
    ("recorder_tmp", secret, "r"), ("pid1_environ", "/proc/1/environ", "r"), ("pid1_mem", "/proc/1/mem", "r"),
    ("pid1_stdout", "/proc/1/fd/1", "w"), ("recorder_mem", f"/proc/{recorder}/mem", "r"),
    ("recorder_stdin", f"/proc/{recorder}/fd/0", "r"), ("recorder_environ", f"/proc/{recorder}/environ", "r"),
    ("artifacts", "/artifacts/planted", "w"),
):
    try:
        open(path, mode).close()
        result[name] = "OPENED"
    except OSError as exc:
        result[name] = exc.errno
import socket
try:
    socket.socket(socket.AF_INET)
    result["socket"] = "OPENED"
except OSError as exc:
    result["socket"] = exc.errno
os.write(out, json.dumps(result).encode())
"""
_ATTACKS = {
    "pidfd_pid1": "import ctypes; ctypes.CDLL(None).syscall(434, 1, 0)",
    "stop_recorder": "import os, sys; os.kill(int(sys.argv[2]), 19)",
    "fork": "import os; os.fork()",
}

PAYLOAD = r"""
import json, os, signal, subprocess, sys, tempfile
from pathlib import Path
from prism.evaluation.harness import make_undumpable, read_key
from prism.evaluation.phase import report_line
from prism.evaluation import walls

key = read_key()
make_undumpable()
fd, secret = tempfile.mkstemp(dir="/tmp")
os.write(fd, b"recorder secret"); os.close(fd)
env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
found = {}

def jailed(code, *extra):
    r, w = os.pipe()
    child = walls.spawn_jailed(
        [sys.executable, "-S", "-B", "-c", code, secret, str(os.getpid()), str(w)],
        submission=Path("/submission"), env=env, pass_fds=(w,), require=True, device="cpu",
        forbidden=(Path(secret), Path("/artifacts")),
    )
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    code = child.proc.wait(timeout=60)
    return child.walls, code, data

status, code, data = jailed(FILES)
found["walls"] = status
found["files"] = json.loads(data or b"{}")
found["attacks"] = {}
for name, attack in ATTACKS.items():
    found["attacks"][name] = jailed(attack)[1]
found["recorder_alive"] = True
print("PRISM_WALLS " + json.dumps(found), flush=True)
print(report_line(key, "inspect", json.dumps({"selftest": True})), flush=True)
""".replace("FILES", repr(_FILES_CHILD)).replace("ATTACKS", repr(_ATTACKS))
_SIGSYS = -31
_EACCES = 13
_EPERM = 1


def _judge(findings: dict[str, object], mac_ok: bool) -> list[CheckResult]:
    walls = findings.get("walls")
    files = findings.get("files")
    attacks = findings.get("attacks")
    if not isinstance(walls, dict) or not isinstance(files, dict) or not isinstance(attacks, dict):
        bad = "the wall probe reported nothing readable"
        return [CheckResult(name, False, bad) for name in ("Landlock", "seccomp allowlist", "pid 1", "report MAC")]
    opened = sorted(k for k, v in files.items() if v != _EACCES and k != "socket")
    landlock_ok = not opened and bool(walls.get("landlock_scoped")) and not walls.get("missing")
    survived = sorted(k for k, v in attacks.items() if v != _SIGSYS)
    pid1_keys = ("pid1_environ", "pid1_mem", "pid1_stdout", "recorder_mem", "recorder_stdin", "recorder_environ")
    pid1_ok = all(files.get(k) == _EACCES for k in pid1_keys) and attacks.get("stop_recorder") == _SIGSYS
    return [
        CheckResult(
            "model jail: Landlock",
            landlock_ok,
            f"ABI {walls.get('landlock_abi')}, scoped={walls.get('landlock_scoped')}; "
            + (f"REACHABLE: {', '.join(opened)}" if opened else "recorder's /tmp, /artifacts, /proc/1 refused"),
        ),
        CheckResult(
            "model jail: seccomp allowlist",
            not survived and files.get("socket") == _EPERM and walls.get("seccomp") == "allowlist",
            f"SURVIVED: {', '.join(survived)}, socket: {files.get('socket')}"
            if survived or files.get("socket") != _EPERM
            else "socket -> EPERM; fork, pidfd_open(1), kill(recorder) -> SIGSYS",
        ),
        CheckResult(
            "pid 1 and recorder unreachable",
            pid1_ok,
            "/proc/1/{environ,mem,fd/1}, /proc/<recorder>/{mem,fd/0,environ} refused; SIGSTOP -> SIGSYS"
            if pid1_ok
            else f"files {files}, stop_recorder exit {attacks.get('stop_recorder')}",
        ),
        CheckResult(
            "report MAC",
            mac_ok,
            "one result line, verified with the host's per-run key" if mac_ok else "no single MAC-valid line",
        ),
    ]


def run_wall_checks(sandbox: Sandbox) -> list[CheckResult]:
    key = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory(prefix="prism-walls-") as scratch:
        work = Path(scratch)
        work.chmod(0o755)
        project = work / "project"
        project.mkdir(mode=0o755)
        (project / "model.py").write_text("x = 1\n")
        artifacts = work / "artifacts"
        artifacts.mkdir()
        spec = RunSpec(
            command=("python3", "-c", PAYLOAD),
            mounts=(Mount(project, SUBMISSION_MOUNT),),
            artifacts_dir=artifacts,
            limits=Limits(memory_bytes=1 << 30, memory_swap_bytes=1 << 30, pids=64, timeout_seconds=300),
            labels={"job_id": "selftest-walls"},
            stdin=key.hex().encode() + b"\n" if getattr(sandbox, "accepts_stdin", False) else b"",
        )
        try:
            result = sandbox.run(spec)
        except SandboxError as exc:
            return [CheckResult("model jail", False, f"{type(exc).__name__}: {exc}")]
    findings: dict[str, object] = {}
    for line in result.stdout.splitlines():
        if line.startswith(FINDINGS_PREFIX):
            findings = json.loads(line[len(FINDINGS_PREFIX) :])
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    mac_ok = result.exit_code == 0 and len(lines) == 1 and verify_report_line(key, "inspect", lines[0]) is not None
    results = _judge(findings, mac_ok)
    if not findings:
        tail = result.stderr.strip()[-300:].replace("\n", "; ")
        results = [CheckResult(r.name, False, f"{r.detail} (exit {result.exit_code}: {tail})") for r in results]
    return results
