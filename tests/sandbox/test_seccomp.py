"""The generated BPF program, executed by a tiny classic-BPF interpreter written for this test."""

from __future__ import annotations

import errno
import struct

import pytest

from prism.sandbox.errors import SandboxUnavailable
from prism.sandbox.seccomp import AUDIT_ARCH, RET_ALLOW, RET_KILL_PROCESS, SYSCALLS, build_filter


def evaluate(program: bytes, *, arch: int, nr: int, arg0: int = 0) -> int:
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    insns = [struct.unpack("<HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code == 0x06:
            return int(k)
        elif code in (0x15, 0x35, 0x45):
            hit = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if hit else jf)
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


EPERM = 0x00050000 | errno.EPERM


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_filter_denies_dangerous_calls_and_allows_the_rest(arch: str) -> None:
    program, table, audit = build_filter(arch), SYSCALLS[arch], AUDIT_ARCH[arch]
    for name in ("ptrace", "mount", "bpf", "keyctl", "perf_event_open", "init_module", "setns", "userfaultfd"):
        assert evaluate(program, arch=audit, nr=table[name]) == EPERM, name
    assert evaluate(program, arch=audit, nr=table["clone3"]) == 0x00050000 | errno.ENOSYS
    thread_flags = 0x3D0F00  # what glibc passes for pthread_create
    assert evaluate(program, arch=audit, nr=table["clone"], arg0=thread_flags) == RET_ALLOW
    assert evaluate(program, arch=audit, nr=table["clone"], arg0=0x10000000 | 17) == EPERM  # CLONE_NEWUSER
    assert evaluate(program, arch=audit, nr=table["unshare"], arg0=0x40000000) == EPERM  # CLONE_NEWNET
    assert evaluate(program, arch=audit, nr=table["unshare"], arg0=0x400) == RET_ALLOW  # CLONE_FILES only
    assert evaluate(program, arch=audit, nr=0) == RET_ALLOW  # read / io_setup
    assert evaluate(program, arch=0x40000003, nr=0) == RET_KILL_PROCESS  # i386 via int 0x80


def test_x32_syscalls_are_refused() -> None:
    assert evaluate(build_filter("x86_64"), arch=AUDIT_ARCH["x86_64"], nr=0x40000000 | 101) == EPERM


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(SandboxUnavailable):
        build_filter("riscv64")
