"""Model processes forked from the recorder before it reads anything secret.

Why: a model's process started by `exec` pays the interpreter, `import torch` and TorchDynamo
(which every `torch.optim` optimizer imports on first use) again, about two seconds of CPU, for
the main model and the replica of every phase. Forked from the recorder once torch is imported,
each inherits all of that for the price of a fork.

What keeps the walls where they were:

- The fork happens first thing in the recorder's `main`, before it reads the report key, the
  job spec (seeds, secret probe plan), the data or anything else: a child's memory holds
  imported modules and nothing the model may not know. Nothing it inherits is secret.
- The child's first acts, before any other code runs: `/dev/null` on stdin (the key is still
  unread in that pipe), stderr on stdout (never the report stream), every other descriptor
  but its two pipes closed. Then it waits for one request: the jail's configuration, the same
  one the exec path gets (`walls.jail_config`), and builds the same walls with the same code
  (`jail.build_walls`: rlimits, no_new_privs, Landlock, seccomp allowlist) in this single-
  threaded process, before a byte of the submission is read. The model's code then runs as in
  the exec path (`model_proc.run`: determinism, warm-up, memory limit, `jail.seal()`, guard,
  import of the submission).
- No computation happens before the fork (imports only), so no thread pool exists to be
  broken by it; each child sets its own thread count.
- The recorder turns non-dumpable after the fork, as before, and stays outside each child's
  Landlock domain: a child cannot signal, ptrace or read it.

A child that is never used (inspect needs one model process, the pool holds two) reads EOF and
exits. Where no pool exists (a recorder run without `main`, or without PYTHONHASHSEED=0, which
every model process of a phase must share), `walls.spawn_jailed` execs a fresh interpreter.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from prism.evaluation.wire import Channel, pipe

POOL_SIZE = 2  # the model's process and the replica


class ForkedChild:
    """The `subprocess.Popen` calls the recorder makes, for a child it forked itself."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"model process {self.pid}", timeout or 0.0)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


@dataclass
class Spare:
    """A forked child waiting for its jail, and the recorder's ends of its two pipes."""

    child: ForkedChild
    channel: Channel


_POOL: list[Spare] = []


def ready() -> bool:
    return bool(_POOL)


def take() -> Spare | None:
    return _POOL.pop(0) if _POOL else None


def fork_pool(size: int = POOL_SIZE) -> None:
    """Import the model's runtime and fork `size` children. Call before reading anything secret."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        return  # every model process of a phase must hash alike; the exec path sets it for each
    import torch._dynamo  # noqa: F401 - what every optimizer imports on first use; inherited

    from prism.evaluation import model_proc  # noqa: F401 - the model process's own modules

    # Everything imported so far stays put: the collector never walks it again, here or in a
    # child, so a child does not copy the pages of torch's objects by touching their headers.
    if len(os.listdir("/proc/self/task")) != 1:
        return  # a thread (none is expected) could hold a lock a child would wait on forever
    gc.freeze()
    for _ in range(size):
        to_child_r, to_child_w = pipe()
        from_child_r, from_child_w = pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(to_child_r, from_child_w)  # never returns
        os.close(to_child_r)
        os.close(from_child_w)
        for fd in (to_child_w, from_child_r):
            os.set_inheritable(fd, False)
        _POOL.append(Spare(ForkedChild(pid), Channel(from_child_r, to_child_w)))


def discard() -> None:
    """End the children nobody took (they read EOF and exit; killed if they do not)."""
    while _POOL:
        spare = _POOL.pop()
        spare.channel.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            spare.child.wait(timeout=5.0)
        spare.child.kill()
        spare.child.poll()


def _close_all_but(keep: set[int]) -> None:
    low = 3
    for fd in sorted(fd for fd in keep if fd >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _child(read_fd: int, write_fd: int) -> None:
    """The forked child's whole life: descriptors, then its jail, then the model. Never returns."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)  # the report key is still unread in the recorder's stdin
        os.dup2(2, 1)  # the model's prints never reach the report stream
        _close_all_but({0, 1, 2, read_fd, write_fd})
        code = _jailed(Channel(read_fd, write_fd))
    except BaseException:  # whatever happens, a forked child must never return into the recorder
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _jailed(channel: Channel) -> int:
    from prism.evaluation import jail, model_proc

    request = channel.recv_json()  # EOF (an unused child) ends here, before any wall is needed
    if request.get("op") != "jail":
        return 2
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})
    os.chdir("/")
    try:
        applied = jail.build_walls(dict(request["config"]))
    except (jail.WallError, OSError, ValueError) as exc:
        channel.send_json({"op": "jail", "ok": False, "error": str(exc)})
        return jail.EXIT_WALL_MISSING
    channel.send_json({"op": "jail", "ok": True, **applied})
    sys.argv = ["prism.evaluation.model_proc"]
    return model_proc.run(channel)
