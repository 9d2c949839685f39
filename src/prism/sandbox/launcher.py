"""The root half of a bubblewrap job. Run as `python -I -S launcher.py PLAN_JSON`; stdlib only.

Why it exists: the sandbox must run as an unprivileged uid, but what it needs (the interpreter
under a private /root, a checkout in an unknown folder, the job's directories) may sit behind
directories that uid cannot traverse, and bubblewrap resolves every bind source by path. So,
still root, this process:

1. opens every bind source, enters a private mount namespace (nothing leaks to the host) and
   binds each source onto a fresh tmpfs "stage" that the sandbox uid can traverse;
2. mounts the job's `/artifacts` as a tmpfs of exactly the quota size (a kernel-enforced limit);
3. forks: the child joins the job's cgroups, sets rlimits, drops to the sandbox uid with no
   groups, no capabilities and no_new_privs, and executes bubblewrap with an empty environment;
4. waits, then copies regular files only (never following a link) from the artifacts tmpfs into
   the host's artifacts directory, and reports a JSON status on `status_fd`.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import stat
import sys
from typing import Any

STAGE = "/tmp"  # noqa: S108 - a fresh tmpfs inside the private mount namespace, not the host's /tmp
ARTIFACTS_STAGE = STAGE + "/artifacts"

_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(
    libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    enc = [None if v is None else v.encode() for v in (source, target, fstype, data)]
    _check(libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {source} on {target}")


def iter_regular_files(root_fd: int, *, max_depth: int = 16, max_entries: int = 100_000) -> Any:
    """Yield (relative path, open fd) for each regular file under `root_fd`, and (path, None) for
    anything skipped (links, devices, fifos, too deep). Never follows a symbolic link: every open
    is relative to an already-open directory with O_NOFOLLOW, and the type is checked on the fd."""
    seen = 0
    stack: list[tuple[int, str, int]] = [(os.dup(root_fd), "", 0)]
    while stack:
        dir_fd, prefix, depth = stack.pop()
        try:
            for name in sorted(os.listdir(dir_fd)):
                seen += 1
                rel = prefix + name
                if seen > max_entries:
                    yield rel, None
                    return
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
                except OSError:
                    yield rel, None  # a symlink (ELOOP), a socket, or gone
                    continue
                mode = os.fstat(fd).st_mode
                if stat.S_ISREG(mode):
                    yield rel, fd
                elif stat.S_ISDIR(mode) and depth < max_depth:
                    stack.append((fd, rel + "/", depth + 1))
                else:
                    os.close(fd)
                    yield rel, None
        finally:
            os.close(dir_fd)


def _copy_out(src_fd: int, dst_fd: int) -> tuple[int, list[str]]:
    copied, skipped = 0, []
    for rel, fd in iter_regular_files(src_fd):
        if fd is None:
            skipped.append(rel)
            continue
        try:
            parts = rel.split("/")
            parent = os.dup(dst_fd)
            for part in parts[:-1]:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=parent)
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                os.close(parent)
                parent = child
            out = os.open(
                parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent
            )
            os.close(parent)
            try:
                while chunk := os.read(fd, 1 << 20):
                    os.write(out, chunk)
            finally:
                os.close(out)
            copied += 1
        finally:
            os.close(fd)
    return copied, skipped


def _child(plan: dict[str, Any], error_w: int) -> None:
    """Join the cgroups, drop privileges, exec bubblewrap. Never returns."""
    try:
        for procs in plan["cgroup_procs"]:
            with open(procs, "w") as handle:
                handle.write(str(os.getpid()))
        for name, (soft, hard) in plan["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (soft, hard))
        os.setgroups([])
        os.setresgid(plan["gid"], plan["gid"], plan["gid"])
        os.setresuid(plan["uid"], plan["uid"], plan["uid"])
        if os.getuid() == 0 or os.geteuid() == 0:
            raise OSError("still root after dropping privileges")
        libc = _libc()
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _check(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
        os.execve(plan["argv"][0], plan["argv"], {})  # noqa: S606 - an argv, never a shell
    except BaseException as exc:  # report anything, then die: this is a forked child
        os.write(error_w, f"launch: {exc}".encode()[:4000])
    os._exit(127)


def main(plan: dict[str, Any]) -> dict[str, Any]:
    libc = _libc()
    _check(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    if os.getppid() != plan["parent_pid"]:
        raise OSError("the worker exited before the job started")
    _check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE, None)
    # Opened inside the new namespace (a bind source must belong to it) and before the stage
    # tmpfs hides whatever the host keeps under /tmp.
    sources = [os.open(src, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for src, _ in plan["binds"]]
    artifacts = plan.get("artifacts")
    host_artifacts = None
    if artifacts:
        host_artifacts = os.open(artifacts["host"], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    _mount(libc, "prism-stage", STAGE, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
    for fd, (_, name) in zip(sources, plan["binds"], strict=True):
        target = f"{STAGE}/{name}"
        os.mkdir(target, 0o755)
        _mount(libc, f"/proc/self/fd/{fd}", target, None, _MS_BIND | _MS_REC, None)
        os.close(fd)
    if artifacts:
        os.mkdir(ARTIFACTS_STAGE, 0o755)
        opts = (
            f"size={artifacts['size']},nr_inodes={artifacts['max_files']},mode=0700,uid={plan['uid']},gid={plan['gid']}"
        )
        _mount(libc, "prism-artifacts", ARTIFACTS_STAGE, "tmpfs", _MS_NOSUID | _MS_NODEV, opts)
    error_r, error_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(error_r)
        _child(plan, error_w)
    os.close(error_w)
    launch_error = b""
    while chunk := os.read(error_r, 4096):
        launch_error += chunk
    _, wait_status = os.waitpid(pid, 0)
    status: dict[str, Any] = {"ok": not launch_error, "wait_status": wait_status, "error": launch_error.decode()}
    if artifacts and host_artifacts is not None:
        src = os.open(ARTIFACTS_STAGE, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        status["copied"], status["skipped"] = _copy_out(src, host_artifacts)
    return status


if __name__ == "__main__":
    _plan = json.loads(sys.argv[1])
    _status_fd = int(_plan["status_fd"])
    os.set_inheritable(_status_fd, False)
    try:
        _result = main(_plan)
    except OSError as _exc:
        _result = {"ok": False, "error": f"launcher: {_exc}"}
    os.write(_status_fd, json.dumps(_result).encode())
    os.close(_status_fd)
