"""Why PRISM refuses a validator's request.

PrismError
└── ValidatorRefused(code, status)   every refusal: the API answers `status` with `code`
"""

from __future__ import annotations

from prism.errors import PrismError


class ValidatorRefused(PrismError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
