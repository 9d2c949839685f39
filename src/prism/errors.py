"""The root of PRISM's own exceptions.

    PrismError
    ├── ConfigError                 settings or runtime config are invalid (fail closed)
    ├── intake.errors.IntakeRejected   a hostile or unsupported archive (carries Evidence)
    ├── sandbox.errors.SandboxError    the isolation layer could not do its job
    └── ...                         each package adds its own family in its errors module

Adapters translate third-party exceptions into these at the boundary; `api/errors.py` is the
one table that maps them to HTTP.
"""


class PrismError(Exception):
    """Base of every error PRISM raises on purpose."""


class ConfigError(PrismError):
    """Settings or the runtime config are invalid; official paths fail closed on this."""
