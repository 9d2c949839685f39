"""The model process's seccomp filter: an ALLOWLIST, compiled to classic BPF by hand (stdlib only).

The outer sandbox filter (`prism.sandbox.seccomp`) is a denylist that the recorder also lives
under. The model's process gets this stricter one, installed by the jail before it executes the
interpreter. A call from the families that are attacks kills the process with SIGSYS (reported
as `forbidden_syscall`: a submission cannot catch the refusal and try another spelling): fork,
vfork, ptrace, process_vm_*, pidfd_*, kcmp, namespaces, mounts, keyrings, bpf, perf, io_uring,
userfaultfd. Sockets of any family are refused with EPERM (glibc itself probes the nscd socket on
a user lookup and must be able to fall back). Every other call not named here fails with ENOSYS
(so libc falls back from clone3 to clone and from faccessat2 to faccessat). Allowed only with
safe arguments (otherwise SIGSYS):

- `clone` only with CLONE_THREAD and no CLONE_NEW* flag (threads, never a new process);
- `kill`, `tgkill`, `rt_sigqueueinfo`, `rt_tgsigqueueinfo` only aimed at the process itself, so
  no signal reaches the recorder, pid 1 or anything else;
- `prlimit64`, `sched_setaffinity` only on itself (pid 0 or its own pid).

`execve` is allowed in the first stage (the jail must execute the interpreter); `seal()` in the
model's process adds a second filter that refuses it (EPERM) before any submitted code is imported.
Filters stack, and the kernel applies the strictest answer.
"""

from __future__ import annotations

import errno
import platform
import struct

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
_OFF_ARG0_LOW = 16  # seccomp_data.args[0], low 32 bits (both architectures are little-endian)
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000
CLONE_THREAD = 0x00010000
CLONE_NEW_MASK = 0x00000080 | 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

# Ordered roughly by how often PyTorch calls them: the filter is a linear scan.
ALLOWED = (
    "futex", "read", "write", "mmap", "munmap", "mprotect", "madvise", "brk", "mremap",
    "sched_yield", "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2", "lseek",
    "close", "close_range", "open", "openat", "openat2", "stat", "fstat", "lstat", "newfstatat",
    "statx", "fstatfs", "statfs", "access", "faccessat", "faccessat2", "readlink", "readlinkat",
    "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "unlink", "unlinkat",
    "rename", "renameat", "renameat2", "rmdir", "ftruncate", "fsync", "fdatasync", "fallocate",
    "fadvise64", "readahead", "umask", "flock", "dup", "dup2", "dup3", "fcntl", "ioctl", "pipe",
    "pipe2", "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "timerfd_create",
    "timerfd_settime", "timerfd_gettime", "msync", "mincore", "membarrier", "get_mempolicy",
    "set_mempolicy", "mbind", "futex_waitv", "set_robust_list", "get_robust_list",
    "set_tid_address", "rseq", "exit", "exit_group", "restart_syscall", "getpid", "gettid",
    "getppid", "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid",
    "getpgrp", "getpgid", "getsid", "uname", "sysinfo", "getrlimit", "setrlimit", "getrusage",
    "times", "clock_getres", "sched_getaffinity", "sched_getparam", "sched_getscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "getcpu", "rt_sigaction", "rt_sigprocmask",
    "rt_sigreturn", "sigaltstack", "rt_sigpending", "rt_sigsuspend", "rt_sigtimedwait", "alarm",
    "setitimer", "getitimer", "getrandom", "prctl", "arch_prctl", "capget", "seccomp",
)  # fmt: skip
# Sockets of every family: EPERM, not death, because glibc itself tries one (the nscd socket, on a
# user lookup such as getpass.getuser()) and falls back when refused. Still no socket at all.
DENIED_EPERM = (
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
)
# Aimed at a pid: allowed only when that pid is 0 (where it means "myself") or the process's own.
SELF_ONLY = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "prlimit64", "sched_setaffinity")
# Attacks end the process (SIGSYS, which the recorder reports as `forbidden_syscall`): an attempt
# cannot be caught and retried in another spelling. Everything else unknown gets ENOSYS.
DENIED_KILL = (
    "fork", "vfork", "tkill", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open",
    "pidfd_getfd", "pidfd_send_signal", "kcmp", "unshare", "setns", "mount",
    "umount2", "pivot_root", "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "open_tree", "move_mount", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "init_module", "finit_module", "kexec_load",
    "kexec_file_load", "process_madvise", "process_mrelease",
)  # fmt: skip

# From asm/unistd_64.h and asm-generic/unistd.h (aarch64 has no legacy calls such as open/fork).
SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "read": 0, "write": 1, "readv": 19, "writev": 20, "pread64": 17, "pwrite64": 18, "preadv": 295,
        "pwritev": 296, "preadv2": 327, "pwritev2": 328, "lseek": 8, "close": 3, "close_range": 436, "open": 2,
        "openat": 257, "openat2": 437, "stat": 4, "fstat": 5, "lstat": 6, "newfstatat": 262, "statx": 332,
        "fstatfs": 138, "statfs": 137, "access": 21, "faccessat": 269, "faccessat2": 439, "readlink": 89,
        "readlinkat": 267, "getdents": 78, "getdents64": 217, "getcwd": 79, "chdir": 80, "fchdir": 81,
        "mkdir": 83, "mkdirat": 258, "unlink": 87, "unlinkat": 263, "rename": 82, "renameat": 264,
        "renameat2": 316, "rmdir": 84, "ftruncate": 77, "fsync": 74, "fdatasync": 75, "fallocate": 285,
        "fadvise64": 221, "umask": 95, "flock": 73, "dup": 32, "dup2": 33, "dup3": 292, "fcntl": 72,
        "ioctl": 16, "pipe": 22, "pipe2": 293, "poll": 7, "ppoll": 271, "select": 23, "pselect6": 270,
        "epoll_create": 213, "epoll_create1": 291, "epoll_ctl": 233, "epoll_wait": 232, "epoll_pwait": 281,
        "epoll_pwait2": 441, "eventfd": 284, "eventfd2": 290, "timerfd_create": 283, "timerfd_settime": 286,
        "timerfd_gettime": 287, "mmap": 9, "munmap": 11, "mprotect": 10, "mremap": 25, "madvise": 28, "brk": 12,
        "msync": 26, "mincore": 27, "membarrier": 324, "get_mempolicy": 239, "set_mempolicy": 238, "mbind": 237,
        "futex": 202, "futex_waitv": 449, "set_robust_list": 273, "get_robust_list": 274,
        "set_tid_address": 218, "rseq": 334, "exit": 60, "exit_group": 231, "restart_syscall": 219,
        "getpid": 39, "gettid": 186, "getppid": 110, "getuid": 102, "geteuid": 107, "getgid": 104,
        "getegid": 108, "getgroups": 115, "getresuid": 118, "getresgid": 120, "getpgrp": 111, "getpgid": 121,
        "getsid": 124, "uname": 63, "sysinfo": 99, "getrlimit": 97, "setrlimit": 160, "getrusage": 98,
        "times": 100, "clock_gettime": 228, "clock_getres": 229, "clock_nanosleep": 230, "nanosleep": 35,
        "gettimeofday": 96, "time": 201, "sched_yield": 24, "sched_getaffinity": 204, "sched_getparam": 143,
        "sched_getscheduler": 145, "sched_get_priority_max": 146, "sched_get_priority_min": 147, "getcpu": 309,
        "rt_sigaction": 13, "rt_sigprocmask": 14, "rt_sigreturn": 15, "sigaltstack": 131, "rt_sigpending": 127,
        "rt_sigsuspend": 130, "rt_sigtimedwait": 128, "alarm": 37, "setitimer": 38, "getitimer": 36,
        "getrandom": 318, "prctl": 157, "arch_prctl": 158, "capget": 125, "seccomp": 317, "readahead": 187,
        "execve": 59, "execveat": 322, "clone": 56, "clone3": 435, "kill": 62, "tgkill": 234,
        "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297, "prlimit64": 302, "sched_setaffinity": 203,
        "tkill": 200, "fork": 57, "vfork": 58, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "pidfd_open": 434, "pidfd_getfd": 438, "pidfd_send_signal": 424, "kcmp": 312, "socket": 41,
        "socketpair": 53, "connect": 42, "bind": 49, "listen": 50, "accept": 43, "accept4": 288, "sendto": 44,
        "recvfrom": 45, "sendmsg": 46, "recvmsg": 47, "unshare": 272, "setns": 308, "mount": 165,
        "umount2": 166, "pivot_root": 155, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "userfaultfd": 323, "bpf": 321, "perf_event_open": 298, "keyctl": 250,
        "add_key": 248, "request_key": 249, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
        "fsmount": 432, "fspick": 433, "mount_setattr": 442, "init_module": 175, "finit_module": 313,
        "kexec_load": 246, "kexec_file_load": 320, "process_madvise": 440, "process_mrelease": 448,
        "memfd_create": 319,
    },
    "aarch64": {
        "read": 63, "write": 64, "readv": 65, "writev": 66, "pread64": 67, "pwrite64": 68, "preadv": 69,
        "pwritev": 70, "preadv2": 286, "pwritev2": 287, "lseek": 62, "close": 57, "close_range": 436,
        "openat": 56, "openat2": 437, "fstat": 80, "newfstatat": 79, "statx": 291, "fstatfs": 44, "statfs": 43,
        "faccessat": 48, "faccessat2": 439, "readlinkat": 78, "getdents64": 61, "getcwd": 17, "chdir": 49,
        "fchdir": 50, "mkdirat": 34, "unlinkat": 35, "renameat": 38, "renameat2": 276, "ftruncate": 46,
        "fsync": 82, "fdatasync": 83, "fallocate": 47, "fadvise64": 223, "umask": 166, "flock": 32, "dup": 23,
        "dup3": 24, "fcntl": 25, "ioctl": 29, "pipe2": 59, "ppoll": 73, "pselect6": 72, "epoll_create1": 20,
        "epoll_ctl": 21, "epoll_pwait": 22, "epoll_pwait2": 441, "eventfd2": 19, "timerfd_create": 85,
        "timerfd_settime": 86, "timerfd_gettime": 87, "mmap": 222, "munmap": 215, "mprotect": 226,
        "mremap": 216, "madvise": 233, "brk": 214, "msync": 227, "mincore": 232, "membarrier": 283,
        "get_mempolicy": 236, "set_mempolicy": 237, "mbind": 235, "futex": 98, "futex_waitv": 449,
        "set_robust_list": 99, "get_robust_list": 100, "set_tid_address": 96, "rseq": 293, "exit": 93,
        "exit_group": 94, "restart_syscall": 128, "getpid": 172, "gettid": 178, "getppid": 173, "getuid": 174,
        "geteuid": 175, "getgid": 176, "getegid": 177, "getgroups": 158, "getresuid": 148, "getresgid": 150,
        "getpgid": 155, "getsid": 156, "uname": 160, "sysinfo": 179, "getrlimit": 163, "setrlimit": 164,
        "getrusage": 165, "times": 153, "clock_gettime": 113, "clock_getres": 114, "clock_nanosleep": 115,
        "nanosleep": 101, "gettimeofday": 169, "sched_yield": 124, "sched_getaffinity": 123,
        "sched_getparam": 121, "sched_getscheduler": 120, "sched_get_priority_max": 125,
        "sched_get_priority_min": 126, "getcpu": 168, "rt_sigaction": 134, "rt_sigprocmask": 135,
        "rt_sigreturn": 139, "sigaltstack": 132, "rt_sigpending": 136, "rt_sigsuspend": 133,
        "rt_sigtimedwait": 137, "setitimer": 103, "getitimer": 102, "getrandom": 278, "prctl": 167,
        "capget": 90, "seccomp": 277, "readahead": 213, "execve": 221, "execveat": 281, "clone": 220,
        "clone3": 435, "kill": 129, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
        "prlimit64": 261, "sched_setaffinity": 122, "tkill": 130, "ptrace": 117, "process_vm_readv": 270,
        "process_vm_writev": 271, "pidfd_open": 434, "pidfd_getfd": 438, "pidfd_send_signal": 424, "kcmp": 272,
        "socket": 198, "socketpair": 199, "connect": 203, "bind": 200, "listen": 201, "accept": 202,
        "accept4": 242, "sendto": 206, "recvfrom": 207, "sendmsg": 211, "recvmsg": 212, "unshare": 97,
        "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "userfaultfd": 282, "bpf": 280, "perf_event_open": 241,
        "keyctl": 219, "add_key": 217, "request_key": 218, "open_tree": 428, "move_mount": 429, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "init_module": 105,
        "finit_module": 273, "kexec_load": 104, "kexec_file_load": 294, "process_madvise": 440,
        "process_mrelease": 448, "memfd_create": 279,
    },
}  # fmt: skip


class FilterUnavailable(Exception):
    """No syscall table for this architecture: refuse rather than run unfiltered."""


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def _errno(value: int) -> int:
    return _RET_ERRNO | value


def _prologue(arch: str) -> list[bytes]:
    prog = [
        _insn(_LD_W_ABS, 0, 0, _OFF_ARCH),
        _insn(_JEQ_K, 1, 0, AUDIT_ARCH[arch]),
        _insn(_RET_K, 0, 0, RET_KILL_PROCESS),  # a foreign ABI: the numbers below mean something else
        _insn(_LD_W_ABS, 0, 0, _OFF_NR),
    ]
    if arch == "x86_64":
        prog += [_insn(_JGE_K, 0, 1, X32_SYSCALL_BIT), _insn(_RET_K, 0, 0, RET_KILL_PROCESS)]
    return prog


def _table(arch: str | None) -> tuple[str, dict[str, int]]:
    arch = arch or platform.machine()
    if arch not in SYSCALLS:
        raise FilterUnavailable(f"no seccomp syscall table for architecture {arch!r}")
    return arch, SYSCALLS[arch]


def build_allowlist(self_pid: int, *, allow_exec: bool, arch: str | None = None) -> bytes:
    """The filter as `struct sock_filter[]` bytes for the process whose pid is `self_pid`."""
    arch, table = _table(arch)
    prog = _prologue(arch)
    for name in ALLOWED:
        if name in table:
            prog += [_insn(_JEQ_K, 0, 1, table[name]), _insn(_RET_K, 0, 0, RET_ALLOW)]
    exec_action = RET_ALLOW if allow_exec else _errno(errno.EPERM)
    for name in ("execve", "execveat"):
        prog += [_insn(_JEQ_K, 0, 1, table[name]), _insn(_RET_K, 0, 0, exec_action)]
    for name in DENIED_EPERM:
        prog += [_insn(_JEQ_K, 0, 1, table[name]), _insn(_RET_K, 0, 0, _errno(errno.EPERM))]
    for name in DENIED_KILL:
        if name in table:
            prog += [_insn(_JEQ_K, 0, 1, table[name]), _insn(_RET_K, 0, 0, RET_KILL_PROCESS)]
    # The argument checks overwrite the accumulator, so each block ends in a return; a block whose
    # number does not match jumps over itself with the number still loaded.
    for name in SELF_ONLY:
        zero_is_self = name in ("prlimit64", "sched_setaffinity")  # kill(0) would mean the whole group
        prog += [
            _insn(_JEQ_K, 0, 5, table[name]),
            _insn(_LD_W_ABS, 0, 0, _OFF_ARG0_LOW),
            _insn(_JEQ_K, 2, 0, self_pid & 0xFFFFFFFF),
            _insn(_JEQ_K, 1, 0, 0 if zero_is_self else self_pid & 0xFFFFFFFF),
            _insn(_RET_K, 0, 0, RET_KILL_PROCESS),
            _insn(_RET_K, 0, 0, RET_ALLOW),
        ]
    # clone: a thread (CLONE_THREAD) in no new namespace; anything else is a process and refused.
    prog += [
        _insn(_JEQ_K, 0, 5, table["clone"]),
        _insn(_LD_W_ABS, 0, 0, _OFF_ARG0_LOW),
        _insn(_JSET_K, 2, 0, CLONE_NEW_MASK),
        _insn(_JSET_K, 0, 1, CLONE_THREAD),
        _insn(_RET_K, 0, 0, RET_ALLOW),
        _insn(_RET_K, 0, 0, RET_KILL_PROCESS),
    ]
    prog.append(_insn(_RET_K, 0, 0, _errno(errno.ENOSYS)))
    return b"".join(prog)
