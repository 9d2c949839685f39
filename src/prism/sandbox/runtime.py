"""What the sandbox must see to run Python: the interpreter, its packages, PRISM's harness.

Found from the running interpreter, so the sandbox runs the exact runtime the worker was
installed with (a virtualenv's site-packages with torch, an editable checkout's `src`), wherever
it lives on disk. Everything here is mounted read-only; nothing else of the host is.
"""

from __future__ import annotations

import site
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import prism
from prism.sandbox.errors import SandboxUnavailable

INNER_BIN = "/opt/prism/bin"
INNER_SITE = "/opt/prism/site-packages"
INNER_SRC = "/opt/prism/src"


@dataclass(frozen=True, slots=True)
class RuntimeLayout:
    python_prefix: Path  # mounted at the same path inside: libpython's rpath points there
    python_executable: Path  # inside the prefix
    site_packages: tuple[Path, ...]  # mounted at INNER_SITE/<i>
    prism_src: Path | None  # the directory holding the `prism` package, mounted at INNER_SRC

    @property
    def pythonpath(self) -> str:
        entries = [INNER_SRC] if self.prism_src else []
        entries += [f"{INNER_SITE}/{i}" for i in range(len(self.site_packages))]
        return ":".join(entries)


def discover_runtime() -> RuntimeLayout:
    prefix = Path(sys.base_prefix).resolve()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    executable = prefix / "bin" / version
    if not executable.is_file():
        raise SandboxUnavailable(f"cannot find the runtime interpreter at {executable}")
    packages: list[Path] = []
    if sys.prefix != sys.base_prefix:  # a virtualenv: its own site-packages carry torch & co.
        candidates = [Path(p) for p in site.getsitepackages([sys.prefix])]
    else:
        candidates = [Path(sysconfig.get_path("purelib")), Path(sysconfig.get_path("platlib"))]
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.is_dir() and resolved not in packages and not resolved.is_relative_to(prefix):
            packages.append(resolved)
    src = Path(prism.__file__).resolve().parent.parent
    prism_src = None if any(src == p for p in packages) or src.is_relative_to(prefix) else src
    return RuntimeLayout(
        python_prefix=prefix,
        python_executable=executable,
        site_packages=tuple(packages),
        prism_src=prism_src,
    )
