"""Landlock through raw system calls (stdlib only): what the model's process may touch on disk.

Landlock is an unprivileged LSM: a process restricts itself (and every descendant, across exec)
to a set of file hierarchies, and the kernel enforces it on every open, whoever the user is.
The jail handles every filesystem right the running kernel knows (ABI 1-7), grants read and
execute beneath the runtime and the submission, read/write beneath one private scratch
directory, and nothing anywhere else: the data, the job spec, `/artifacts`, `/proc/1` and the
recorder's files stay out of reach even though they belong to the same uid. ABI 4 adds TCP
(handled, no port allowed); ABI 6 adds scopes: no signal to, and no abstract unix socket of,
any process outside the domain (the recorder, pid 1). A Landlock domain also refuses ptrace and
`/proc/<pid>/mem` from inside towards any process outside it.
"""

from __future__ import annotations

import ctypes
import os
import platform
import stat
import struct
from dataclasses import dataclass

# Syscall numbers are the same on x86_64 and aarch64 (new calls use the generic table).
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

# Filesystem rights each ABI knows (a ruleset may only handle what the kernel knows).
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = EXECUTE | READ_FILE | READ_DIR
WRITE = READ_FILE | READ_DIR | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | TRUNCATE
DEVICE = READ_FILE | WRITE_FILE | IOCTL_DEV


class LandlockError(Exception):
    """Landlock is missing or refused a rule: the caller decides whether that fails closed."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _syscall(libc: ctypes.CDLL, *args: object) -> int:
    libc.syscall.restype = ctypes.c_long
    return int(libc.syscall(*args))


def abi_version() -> int:
    """The Landlock ABI the kernel offers, 0 when it offers none (or not on Linux)."""
    if platform.system() != "Linux":
        return 0
    value = _syscall(_libc(), ctypes.c_long(_SYS_CREATE_RULESET), None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(value, 0)


def handled_fs(abi: int) -> int:
    return _FS_BY_ABI[max(k for k in _FS_BY_ABI if k <= abi)] if abi >= 1 else 0


@dataclass(frozen=True, slots=True)
class Rule:
    path: str
    access: int


@dataclass(frozen=True, slots=True)
class Applied:
    abi: int
    network: bool  # TCP bind/connect handled (ABI >= 4)
    scoped: bool  # signals and abstract unix sockets scoped (ABI >= 6)


def restrict_self(rules: tuple[Rule, ...]) -> Applied:
    """Enter a new Landlock domain allowing exactly `rules`. Needs no_new_privs set beforehand."""
    abi = abi_version()
    if abi < 1:
        raise LandlockError("the kernel offers no Landlock (CONFIG_SECURITY_LANDLOCK, lsm=landlock)")
    libc = _libc()
    fs = handled_fs(abi)
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    # The struct grew with the ABI; an older kernel refuses the bigger size.
    attr = (
        struct.pack("<QQQ", fs, net, scoped)
        if abi >= 6
        else struct.pack("<QQ", fs, net)
        if abi >= 4
        else struct.pack("<Q", fs)
    )
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _syscall(libc, ctypes.c_long(_SYS_CREATE_RULESET), buf, ctypes.c_size_t(len(attr)), 0)
    if ruleset < 0:
        raise LandlockError(f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}")
    try:
        for rule in rules:
            _add(libc, ruleset, rule, fs)
        if _syscall(libc, ctypes.c_long(_SYS_RESTRICT_SELF), ruleset, 0) != 0:
            raise LandlockError(f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return Applied(abi=abi, network=net != 0, scoped=scoped != 0)


def _add(libc: ctypes.CDLL, ruleset: int, rule: Rule, handled: int) -> None:
    try:
        fd = os.open(rule.path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path this host does not have grants nothing
    try:
        access = rule.access & handled
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= FILE_ONLY  # directory rights on a file are refused with EINVAL
        if not access:
            return
        attr = ctypes.create_string_buffer(struct.pack("<Qi", access, fd), 12)
        if _syscall(libc, ctypes.c_long(_SYS_ADD_RULE), ruleset, _RULE_PATH_BENEATH, attr, 0) != 0:
            raise LandlockError(f"landlock_add_rule({rule.path}) failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
