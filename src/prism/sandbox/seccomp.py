"""A seccomp filter for the sandbox, compiled to raw classic BPF (no libseccomp needed).

bubblewrap loads it (`--seccomp FD`) just before it executes the job. Denied calls fail with
EPERM rather than killing the process, so a hostile payload gets a clean error and the run is
still reported; a foreign architecture (i386 via int 0x80, x32) is refused outright because
the syscall numbers below would not mean what we think.

Denied: debugging other processes (ptrace, process_vm_*), mounting and pivoting, kernel
modules and kexec, bpf, keyrings, perf events, userfaultfd, io_uring (it bypasses seccomp for
its operations), swap, reboot, clock changes, and every way into a new namespace: setns,
unshare/clone with a CLONE_NEW* flag, and clone3 (its flags sit behind a pointer seccomp cannot
read, so it answers ENOSYS and libc falls back to clone, which we can inspect).
"""

from __future__ import annotations

import errno
import platform
import struct

from prism.sandbox.errors import SandboxUnavailable

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000

_OFF_NR = 0
_OFF_ARCH = 4
_OFF_ARG0_LOW = 16  # args[0], low 32 bits (both supported architectures are little-endian)

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000

# Every CLONE_NEW* flag: NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
CLONE_NEW_MASK = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "name_to_handle_at", "open_by_handle_at",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "bpf", "keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "swapon", "swapoff", "reboot", "acct", "quotactl", "syslog", "lookup_dcookie",
    "sethostname", "setdomainname", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "iopl", "ioperm", "setns",
)  # fmt: skip

# From the kernel's unistd tables (asm/unistd_64.h and asm-generic/unistd.h).
SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
        "mount": 165, "umount2": 166, "pivot_root": 155, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "name_to_handle_at": 303,
        "open_by_handle_at": 304, "init_module": 175, "finit_module": 313, "delete_module": 176,
        "kexec_load": 246, "kexec_file_load": 320, "bpf": 321, "keyctl": 250, "add_key": 248,
        "request_key": 249, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "swapon": 167, "swapoff": 168, "reboot": 169,
        "acct": 163, "quotactl": 179, "syslog": 103, "lookup_dcookie": 212, "sethostname": 170,
        "setdomainname": 171, "settimeofday": 164, "clock_settime": 227, "adjtimex": 159,
        "clock_adjtime": 305, "iopl": 172, "ioperm": 173, "setns": 308,
        "unshare": 272, "clone": 56, "clone3": 435,
    },
    "aarch64": {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
        "mount": 40, "umount2": 39, "pivot_root": 41, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "name_to_handle_at": 264,
        "open_by_handle_at": 265, "init_module": 105, "finit_module": 273, "delete_module": 106,
        "kexec_load": 104, "kexec_file_load": 294, "bpf": 280, "keyctl": 219, "add_key": 217,
        "request_key": 218, "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "swapon": 224, "swapoff": 225, "reboot": 142,
        "acct": 89, "quotactl": 60, "syslog": 116, "lookup_dcookie": 18, "sethostname": 161,
        "setdomainname": 162, "settimeofday": 170, "clock_settime": 112, "adjtimex": 171,
        "clock_adjtime": 266, "setns": 268,
        "unshare": 97, "clone": 220, "clone3": 435,
    },
}  # fmt: skip


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def _errno(value: int) -> int:
    return _RET_ERRNO | value


def build_filter(arch: str | None = None) -> bytes:
    """The filter as `struct sock_filter[]` bytes, ready for bubblewrap's `--seccomp FD`."""
    arch = arch or platform.machine()
    if arch not in SYSCALLS:
        raise SandboxUnavailable(f"no seccomp syscall table for architecture {arch!r}; refusing to run unfiltered")
    table = SYSCALLS[arch]
    prog = [
        _insn(_LD_W_ABS, 0, 0, _OFF_ARCH),
        _insn(_JEQ_K, 1, 0, AUDIT_ARCH[arch]),
        _insn(_RET_K, 0, 0, RET_KILL_PROCESS),
        _insn(_LD_W_ABS, 0, 0, _OFF_NR),
    ]
    if arch == "x86_64":
        prog += [_insn(_JGE_K, 0, 1, X32_SYSCALL_BIT), _insn(_RET_K, 0, 0, _errno(errno.EPERM))]
    for name in DENIED:
        if name in table:
            prog += [_insn(_JEQ_K, 0, 1, table[name]), _insn(_RET_K, 0, 0, _errno(errno.EPERM))]
    prog += [_insn(_JEQ_K, 0, 1, table["clone3"]), _insn(_RET_K, 0, 0, _errno(errno.ENOSYS))]
    # clone and unshare are allowed unless a namespace flag is set; both end the filter, so the
    # accumulator may be overwritten with the flags argument.
    for name in ("clone", "unshare"):
        prog += [
            _insn(_JEQ_K, 0, 4, table[name]),
            _insn(_LD_W_ABS, 0, 0, _OFF_ARG0_LOW),
            _insn(_JSET_K, 0, 1, CLONE_NEW_MASK),
            _insn(_RET_K, 0, 0, _errno(errno.EPERM)),
            _insn(_RET_K, 0, 0, RET_ALLOW),
        ]
    prog.append(_insn(_RET_K, 0, 0, RET_ALLOW))
    return b"".join(prog)
