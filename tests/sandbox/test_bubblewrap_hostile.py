"""Hostile payloads really run in the bubblewrap backend; each must be contained and reported."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
from tests.sandbox.helpers import RunPy, needs_bwrap

from prism.config import Settings
from prism.sandbox.bubblewrap import BubblewrapSandbox
from prism.sandbox.spec import SUBMISSION_MOUNT, Limits, Mount, RunSpec

pytestmark = [pytest.mark.sandbox, needs_bwrap]


def test_runs_as_unprivileged_uid_with_only_its_own_environment(run_py: RunPy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_ONLY_SECRET", "leak-me-7f3a")
    result = run_py(
        "import os\n"
        "print('uid', os.getuid(), os.geteuid(), os.getgid())\n"
        "print('env', sorted(os.environ.items()))\n"
        "print('init-env', repr(open('/proc/1/environ').read()))\n"
        "print('self-env', open('/proc/self/environ').read())\n"
    )
    assert result.exit_code == 0, result.stderr
    assert "uid 65534 65534 65534" in result.stdout
    assert "PYTHONDONTWRITEBYTECODE" in result.stdout  # the control: the environment was printed
    assert "init-env ''" in result.stdout  # bubblewrap itself started from an empty environment
    assert "leak-me-7f3a" not in result.stdout + result.stderr


def test_host_files_data_dir_and_secrets_are_invisible(run_py: RunPy, settings: Settings, job_dir: Path) -> None:
    secret_file = job_dir / "host-secret.txt"
    secret_file.write_text("host-secret-9b1c")
    secret_file.chmod(0o644)
    settings.data_dir.mkdir()
    (settings.data_dir / "prism.db").write_text("database")
    result = run_py(
        "import os\n"
        f"for p in [{str(secret_file)!r}, {str(settings.data_dir)!r}, '/etc/shadow', '/home', '/run', '/var']:\n"
        "    print(p, os.path.exists(p))\n"
        "print('tmp', os.listdir('/tmp'))\n"
        "print('submission', os.listdir('/submission'))\n"
    )
    assert result.exit_code == 0, result.stderr
    for line in result.stdout.splitlines()[:6]:
        assert line.endswith("False"), line
    assert "tmp []" in result.stdout
    assert "submission ['model.py']" in result.stdout
    assert "host-secret-9b1c" not in result.stdout


def test_network_is_loopback_only(run_py: RunPy) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    result = run_py(
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')\n"
        "except OSError as e: print('connect refused', type(e).__name__)\n"
        "try:\n"
        "    socket.getaddrinfo('pypi.org', 443); print('resolved')\n"
        "except OSError as e: print('dns failed', type(e).__name__)\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=3); print('internet')\n"
        "except OSError as e: print('internet unreachable', e.errno)\n"
    )
    assert "connect refused" in result.stdout and "dns failed" in result.stdout, result.stdout + result.stderr
    assert "internet unreachable" in result.stdout
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()


def test_writes_outside_artifacts_and_tmp_are_refused(run_py: RunPy) -> None:
    result = run_py(
        "import os\n"
        "targets = ['/submission/evil.py', '/evil', '/usr/evil', '/opt/prism/src/evil.py']\n"
        "targets += ['/tmp/ok', '/artifacts/ok']\n"
        "for p in targets:\n"
        "    try:\n"
        "        open(p, 'w').write('x'); print(p, 'written')\n"
        "    except OSError as e: print(p, 'refused', e.errno)\n"
    )
    lines = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert lines["/submission/evil.py"] == "refused"
    assert lines["/evil"] == "refused"
    assert lines["/usr/evil"] == "refused"
    assert lines["/opt/prism/src/evil.py"] == "refused"
    assert lines["/tmp/ok"] == "written" and lines["/artifacts/ok"] == "written"
    assert result.artifacts == {"ok": b"x"}


def test_fork_bomb_is_contained_by_the_pids_limit(run_py: RunPy) -> None:
    result = run_py(
        "import os, time\n"
        "kids = 0\n"
        "try:\n"
        "    for _ in range(100000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60); os._exit(0)\n"
        "        kids += 1\n"
        "except OSError as e: print('fork refused after', kids, e.errno)\n",
        pids=48,
    )
    assert "fork refused after" in result.stdout, result.stderr
    assert int(result.stdout.split()[3]) < 48
    assert result.duration_seconds < 20


def test_memory_bomb_is_oom_killed(run_py: RunPy) -> None:
    result = run_py("x = b'\\x01' * (4 << 30)\nprint('allocated')\n")
    assert result.oom_killed is True
    assert result.exit_code != 0 and "allocated" not in result.stdout
    assert result.peak_memory_bytes is not None and result.peak_memory_bytes <= 512 * 1024**2 + 1024**2


def test_infinite_loop_times_out_and_orphans_die(run_py: RunPy) -> None:
    marker = f"orphan-{uuid.uuid4().hex}"
    result = run_py(
        "import os, subprocess, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}])\n"
        "    os._exit(0)\n"
        "while True: pass\n",
        timeout_seconds=2.0,
    )
    assert result.timed_out is True and result.exit_code is None
    assert 1.5 < result.duration_seconds < 8
    survivors = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, marker)]
    assert survivors == []


def test_double_forked_orphan_dies_when_the_job_exits(run_py: RunPy) -> None:
    marker = f"orphan-{uuid.uuid4().hex}"
    result = run_py(
        "import os, subprocess, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}],\n"
        "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "    os._exit(0)\n"
        "os.wait(); print('parent done')\n"
    )
    assert result.exit_code == 0 and "parent done" in result.stdout
    assert result.duration_seconds < 10
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, marker)]


def _cmdline_has(proc: Path, marker: str) -> bool:
    try:
        return marker.encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False


def test_half_a_gigabyte_of_stdout_keeps_only_the_tail(run_py: RunPy) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run_py(
        "import sys\nchunk = b'A' * (1 << 20)\nfor _ in range(500): sys.stdout.buffer.write(chunk)\nprint('THE END')\n",
        output_bytes=64 * 1024,
    )
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.exit_code == 0
    assert result.stdout_bytes == 500 * (1 << 20) + len("THE END\n")
    assert result.stdout.endswith("THE END\n") and len(result.stdout) < 64 * 1024 + 100
    assert grown_kib < 100 * 1024


def test_ptrace_and_nested_namespaces_are_denied(run_py: RunPy) -> None:
    result = run_py(
        "import ctypes, os, subprocess\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('traceme', libc.ptrace(0, 0, 0, 0), ctypes.get_errno())\n"
        "print('attach', libc.ptrace(16, 1, 0, 0), ctypes.get_errno())\n"
        "print('userns', libc.unshare(0x10000000), ctypes.get_errno())\n"
        "print('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), ctypes.get_errno())\n"
        "print('bpf', libc.syscall(321, 0, 0, 0), ctypes.get_errno())\n"
        "r = subprocess.run(['unshare', '-U', 'true'], capture_output=True)\n"
        "print('unshare-cli', r.returncode)\n"
    )
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["traceme"] == "-1 1"  # EPERM from the seccomp filter
    assert lines["attach"] == "-1 1"
    assert lines["userns"] == "-1 1"
    assert lines["mount"] == "-1 1"
    assert lines["unshare-cli"] != "0"


def test_job_cannot_kill_its_parent_or_host_processes(run_py: RunPy) -> None:
    # A host process owned by the very same uid the sandbox runs as: the obvious target.
    sleeper = subprocess.Popen(["sleep", "60"], user=65534, group=65534, extra_groups=[])
    try:
        result = run_py(
            "import os, signal\n"
            f"try: os.kill({sleeper.pid}, signal.SIGKILL); print('host pid killed')\n"
            "except OSError as e: print('host pid', e.errno)\n"
            "print('ppid', os.getppid())\n"
            "os.kill(os.getppid(), signal.SIGKILL)\n"
            "os.kill(-1, signal.SIGKILL)\n"
        )
        assert "host pid killed" not in result.stdout
        assert sleeper.poll() is None
        assert os.getpid() > 0  # and we, the worker, are still here to check
    finally:
        sleeper.kill()
        sleeper.wait()


def test_cpu_quota_is_enforced(run_py: RunPy) -> None:
    result = run_py(
        "import time\nend = time.monotonic() + 1.5\nwhile time.monotonic() < end: pass\nprint(time.process_time())\n",
        cpus=0.25,
    )
    assert float(result.stdout.strip()) < 0.8, result.stdout


def test_artifacts_quota_links_and_redaction(run_py: RunPy) -> None:
    result = run_py(
        "import os\n"
        "open('/artifacts/metrics.json', 'w').write('{\"bpb\": 1.5}')\n"
        "os.symlink('/etc/passwd', '/artifacts/link')\n"
        "os.mkfifo('/artifacts/fifo')\n"
        "try:\n"
        "    open('/artifacts/big', 'wb').write(b'x' * (8 << 20))\n"
        "except OSError as e: print('quota', e.errno)\n"
        "print('token tok-123-secret')\n",
        artifacts_bytes=4 << 20,
        redact=("tok-123-secret",),
    )
    assert result.artifacts["metrics.json"] == b'{"bpb": 1.5}'
    assert "link" in result.artifacts_skipped and "fifo" in result.artifacts_skipped
    assert "quota 28" in result.stdout  # ENOSPC: the artifacts tmpfs is exactly the quota
    assert "tok-123-secret" not in result.stdout and "[REDACTED]" in result.stdout


def test_torch_imports_inside_the_sandbox(run_py: RunPy) -> None:
    result = run_py(
        "import torch\nprint(torch.tensor([1.0, 2.0]).sum().item())\n", memory_bytes=2 << 30, memory_swap_bytes=2 << 30
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "3.0"


def test_the_sandbox_can_use_the_prism_harness_package(run_py: RunPy) -> None:
    result = run_py("import prism.contract, sys\nprint(prism.contract.VOCAB_SIZE, sys.flags.dont_write_bytecode)\n")
    assert result.stdout.strip() == "256 1", result.stderr


def test_infrastructure_refusals(settings: Settings) -> None:
    from prism.sandbox.errors import SandboxUnavailable

    with pytest.raises(SandboxUnavailable):
        BubblewrapSandbox(settings.model_copy(update={"sandbox_uid": 0}))
    missing = BubblewrapSandbox(settings.model_copy(update={"sandbox_bwrap_binary": "/nonexistent/bwrap"}))
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        missing.preflight()


def test_stdin_reaches_the_job_once_and_then_ends(sandbox: BubblewrapSandbox, job_dir: Path) -> None:
    # The evaluation's report key travels this way: stdin, never argv, env or a file.
    spec = RunSpec(
        command=("python3", "-c", "import sys; print(repr(sys.stdin.read()))"),
        mounts=(Mount(job_dir / "project", SUBMISSION_MOUNT),),
        artifacts_dir=job_dir / "artifacts",
        limits=Limits(timeout_seconds=30.0, memory_bytes=512 << 20, memory_swap_bytes=512 << 20),
        stdin=b"k3y-for-this-run\n",
    )
    result = sandbox.run(spec)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == repr("k3y-for-this-run\n")


def test_stdout_reaches_the_tap_while_the_job_still_runs(sandbox: BubblewrapSandbox, job_dir: Path) -> None:
    # Live progress rests on this: the job waits for a file the host creates only once its tap
    # has seen the job's first line, so the job can finish only if stdout arrived while it ran.
    gate = job_dir / "gate"
    gate.mkdir(mode=0o755)
    code = (
        "import os, time\n"
        "print('first', flush=True)\n"
        "give_up = time.monotonic() + 60\n"
        "while not os.path.exists('/gate/open') and time.monotonic() < give_up:\n"
        "    time.sleep(0.02)\n"
        "print('second' if os.path.exists('/gate/open') else 'never saw the gate', flush=True)\n"
    )
    seen = bytearray()

    def tap(chunk: bytes) -> None:
        seen.extend(chunk)
        if b"first\n" in seen:
            (gate / "open").touch()

    spec = RunSpec(
        command=("python3", "-c", code),
        mounts=(Mount(job_dir / "project", SUBMISSION_MOUNT), Mount(gate, "/gate")),
        artifacts_dir=job_dir / "artifacts",
        limits=Limits(timeout_seconds=120.0, memory_bytes=512 << 20, memory_swap_bytes=512 << 20),
        stdout_tap=tap,
    )
    result = sandbox.run(spec)
    assert result.exit_code == 0, result.stderr
    assert seen.decode() == result.stdout == "first\nsecond\n"
