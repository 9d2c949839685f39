"""The runtime guard of the model's process: a second line behind static review.

Installed with `sys.addaudithook` after torch and the harness's own modules are loaded, so the
only new imports it sees are the submission's and torch's lazy ones. From then on the process
may read files only under the Python runtime's and the submission's directories, may write none,
may not open sockets, start or signal processes, load native code through ctypes, unpickle, or
import modules outside the allowlist. An audit hook cannot be removed once added, but its state
lives in this interpreter with the submission, and ordinary Python (`gc`, closure cells, module
globals) can switch it off; native paths (`torch.from_file`, TorchScript) never raise an audit
event. It is a filter that gives early, readable errors, not a wall: the walls are the jail's
Landlock domain and seccomp allowlist (`jail.py`), which the kernel enforces whatever this hook
says (tests/redteam/test_unreviewed_walls.py switches it off and the walls still hold).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

# Top-level modules a submission, or torch on its behalf, may load after the guard is up.
ALLOWED_IMPORTS = frozenset(
    {
        "torch", "torchgen", "sympy", "mpmath", "typing_extensions", "optree", "numpy", "prism",
        "__future__", "abc", "array", "bisect", "cmath", "collections", "contextlib", "copy",
        "copyreg", "dataclasses", "decimal", "dis", "enum", "fractions", "functools", "heapq",
        "itertools", "keyword", "linecache", "math", "numbers", "opcode", "operator", "random",
        "re", "statistics", "string", "struct", "textwrap", "token", "tokenize", "traceback",
        "types", "typing", "unicodedata", "warnings", "weakref",
    }
)  # fmt: skip
# prism itself: only the contract a submission is allowed to see.
ALLOWED_PRISM = frozenset({"prism", "prism.contract"})

_DENIED_PREFIXES = (
    "socket.", "subprocess.", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "os.kill", "os.killpg", "signal.pthread_kill", "os.system", "os.remove", "os.unlink",
    "os.rename", "os.replace", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod",
    "os.chown", "os.truncate", "os.utime", "os.chdir", "os.putenv", "os.unsetenv", "ctypes.",
    "shutil.", "urllib.", "http.", "ftplib.", "smtplib.", "webbrowser.", "pickle.", "mmap.",
    "glob.", "pty.", "resource.", "syslog.", "winreg.",
)  # fmt: skip
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class GuardViolation(PermissionError):
    """The submission tried something the runtime guard forbids."""


def _within(path: str, roots: tuple[str, ...]) -> bool:
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root + os.sep) for root in roots)


def default_read_roots(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The Python runtime, its packages, PRISM's own source, and what the caller adds."""
    import torch

    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.dirname(torch.__file__))}
    candidates.update(p for p in sys.path if p and os.path.isdir(p))
    candidates.update(extra)
    return tuple(sorted({os.path.realpath(p) for p in candidates if p and os.path.realpath(p) != "/"}))


def install(*, read_roots: tuple[str, ...], project_modules: frozenset[str]) -> None:
    allowed = ALLOWED_IMPORTS | project_modules

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, _mode, flags = args
            if isinstance(flags, int) and flags & _WRITE_FLAGS:
                raise GuardViolation(f"prism guard: writing files is not allowed ({path!r})")
            if isinstance(path, int):
                return  # an already open descriptor (the harness's pipes)
            name = os.fsdecode(path)
            if not _within(name, read_roots):
                raise GuardViolation(f"prism guard: reading {name!r} is not allowed")
            return
        if event in ("os.listdir", "os.scandir"):
            # The import system lists directories on sys.path; nothing else may be listed.
            target = args[0] if args and args[0] is not None else "."
            if isinstance(target, int) or not _within(os.fsdecode(target), read_roots):
                raise GuardViolation(f"prism guard: listing {target!r} is not allowed")
            return
        if event == "import":
            module = str(args[0])
            top = module.split(".", 1)[0]
            if top not in allowed or (top == "prism" and module not in ALLOWED_PRISM):
                raise GuardViolation(f"prism guard: importing {module!r} is not allowed")
            return
        if event.startswith(_DENIED_PREFIXES):
            raise GuardViolation(f"prism guard: {event} is not allowed")

    sys.addaudithook(hook)
