"""Helpers shared by the sandbox tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest

from prism.sandbox.spec import RunResult

CAN_SANDBOX = shutil.which("bwrap") is not None and os.geteuid() == 0
needs_bwrap = pytest.mark.skipif(not CAN_SANDBOX, reason="needs bubblewrap and root (for cgroups)")
RunPy = Callable[..., RunResult]
