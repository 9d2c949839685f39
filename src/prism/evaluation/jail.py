"""The jail of the model's process: `python -S -B -m prism.evaluation.jail CONFIG -- ARGV...`.

The recorder starts the model's process through this trampoline, so the walls are up before the
interpreter that will run submitted code exists, and they are the same under bubblewrap, Docker
and the Platform broker (one container there holds both processes; this does not depend on it).
In order, in a process that has run nothing but this file and the standard library:

1. rlimits (no core dumps, bounded descriptors and file sizes);
2. `no_new_privs` (nothing it executes can gain privileges; required for the rest);
3. Landlock (`landlock.py`): read beneath the runtime and the submission, write beneath a
   private scratch directory, TCP handled with no port allowed, signals and abstract unix
   sockets scoped to its own domain;
4. the seccomp allowlist (`allowlist.py`), with `execve` still allowed;
5. one JSON status line on the status pipe (close-on-exec, so the recorder sees EOF at exec),
   then `execv` of the model's interpreter.

`seal()` is the second stage, called by the model's process after torch is warm and before the
submission is imported: it adds a filter that refuses `execve`, so the submission cannot replace
its process with anything else. Where a wall cannot be built and the run requires it (official
runs), the trampoline reports the missing wall and exits: the recorder turns that into an
infrastructure failure, never a run without the wall.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from typing import Any

from prism.evaluation import allowlist, landlock

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
EXIT_WALL_MISSING = 111


class WallError(Exception):
    """A wall could not be built."""


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _prctl(option: int, arg2: int | ctypes.c_void_p, what: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, arg2, 0, 0, 0) != 0:
        raise WallError(f"{what} failed: {os.strerror(ctypes.get_errno())}")


def install_filter(program: bytes) -> None:
    """Load a classic BPF seccomp filter on the calling thread (and every later one)."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise WallError(f"seccomp filter refused: {os.strerror(ctypes.get_errno())}")


def no_new_privs() -> None:
    _prctl(PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)")


def seal() -> None:
    """Second stage, in the model's process before the submission runs: no more execve."""
    install_filter(allowlist.build_allowlist(os.getpid(), allow_exec=False))


def _lowered(which: int, soft: int, hard: int) -> tuple[int, int]:
    """Never above the limits already set (an unprivileged process cannot raise a hard limit)."""
    cur_soft, cur_hard = resource.getrlimit(which)

    def low(a: int, b: int) -> int:
        return b if a == resource.RLIM_INFINITY else a if b == resource.RLIM_INFINITY else min(a, b)

    new_hard = low(hard, cur_hard)
    return low(low(soft, cur_soft), new_hard), new_hard


def _rules(config: dict[str, Any]) -> tuple[landlock.Rule, ...]:
    rules = [landlock.Rule(str(p), landlock.READ) for p in config.get("read", ())]
    rules += [landlock.Rule(str(p), landlock.WRITE) for p in config.get("write", ())]
    rules += [landlock.Rule(str(p), landlock.DEVICE) for p in config.get("devices", ())]
    return tuple(rules)


def build_walls(config: dict[str, Any]) -> dict[str, Any]:
    """Put up every wall in `config`; returns what was applied. Raises `WallError` if a required one fails."""
    require = bool(config.get("require", True))
    for name, (soft, hard) in dict(config.get("rlimits", {})).items():
        resource.setrlimit(getattr(resource, name), _lowered(getattr(resource, name), int(soft), int(hard)))
    no_new_privs()
    applied: dict[str, Any] = {"no_new_privs": True, "missing": []}
    try:
        done = landlock.restrict_self(_rules(config))
        applied.update(landlock_abi=done.abi, landlock_network=done.network, landlock_scoped=done.scoped)
        if not (done.network and done.scoped):
            applied["missing"].append(f"landlock ABI {done.abi} < 6: no TCP or signal/socket scoping")
    except landlock.LandlockError as exc:
        applied["missing"].append(f"landlock: {exc}")
    try:
        arch = config.get("arch")  # only tests name one: a foreign one must fail closed
        install_filter(allowlist.build_allowlist(os.getpid(), allow_exec=True, arch=str(arch) if arch else None))
        applied["seccomp"] = "allowlist"
    except (allowlist.FilterUnavailable, WallError) as exc:
        applied["missing"].append(f"seccomp allowlist: {exc}")
    if require and applied["missing"]:
        raise WallError("; ".join(applied["missing"]))
    return applied


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") != 2:
        sys.stderr.write("usage: python -m prism.evaluation.jail CONFIG_JSON -- ARGV...\n")
        return 2
    config = json.loads(argv[1])
    command = argv[3:]
    status_fd = int(config["status_fd"])
    os.set_inheritable(status_fd, False)  # closes at exec: the recorder's EOF means "executed"
    try:
        applied = build_walls(config)
    except (WallError, OSError, ValueError) as exc:
        os.write(status_fd, json.dumps({"ok": False, "error": str(exc)}).encode() + b"\n")
        return EXIT_WALL_MISSING
    os.write(status_fd, json.dumps({"ok": True, **applied}).encode() + b"\n")
    try:
        os.execv(command[0], command)  # noqa: S606 - an argv from the recorder, never a shell
    except OSError as exc:
        os.write(status_fd, json.dumps({"ok": False, "error": f"exec {command[0]}: {exc}"}).encode() + b"\n")
    return EXIT_WALL_MISSING


if __name__ == "__main__":
    sys.exit(main(sys.argv))
