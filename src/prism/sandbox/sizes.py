"""Human sizes ("512m", "64g", "1.5GiB") to bytes, one parser for the CLI, the GPU profile and Docker."""

from __future__ import annotations

import re

from prism.sandbox.errors import SandboxSpecRejected

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes from `text`; binary units (k = 1024). A bare number is bytes."""
    if isinstance(text, bool):
        raise SandboxSpecRejected(f"size must be a number or text like '512m', got {text!r}")
    if isinstance(text, int):
        if text <= 0:
            raise SandboxSpecRejected(f"size must be positive, got {text}")
        return text
    match = _SIZE.match(text)
    if not match:
        raise SandboxSpecRejected(f"cannot read size {text!r}; use forms like 512m, 4g, 1048576")
    value = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if value <= 0:
        raise SandboxSpecRejected(f"size must be positive, got {text!r}")
    return value


def format_size(value: int) -> str:
    """The shortest exact Docker-style form ("512m"), bytes ("b") when nothing divides evenly."""
    for suffix, unit in (("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if value % unit == 0:
            return f"{value // unit}{suffix}"
    return f"{value}b"
