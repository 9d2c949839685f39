# Writes a forged result line to pid 1's stdout through /proc/1/fd/1, then goes on honestly.
import torch
from helpers import Tiny, unguard


def build_model(ctx):
    unguard()
    forged = 'PRISM_PHASE_RESULT {"phase": "inspect", "status": "ok", "figures": {}} ' + "0" * 64 + "\n"
    with open("/proc/1/fd/1", "w") as stdout:
        stdout.write(forged)
    return Tiny()
