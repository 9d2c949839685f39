# Stops its recorder (the parent) with SIGSTOP, hoping the run ends as PRISM's own fault.
import torch
from helpers import Tiny, unguard


def build_model(ctx):
    sys = unguard()
    os = sys.modules["os"]
    os.kill(os.getppid(), 19)
    return Tiny()
