"""`dispatch_assignment`, as Platform's validator agent imports it (see `prism.validators.dispatch`)."""

from __future__ import annotations

from prism.validators.dispatch import DispatchError, dispatch_assignment

__all__ = ["DispatchError", "dispatch_assignment"]
