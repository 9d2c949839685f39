"""PRISM: the evaluation service of a Bittensor subnet challenge that trusts no submission."""

__version__ = "0.1.0"
API_VERSION = "1.0"  # Platform's orchestrator accepts exactly this
CHALLENGE_VERSION = "1"  # the default; PRISM_CHALLENGE_VERSION / CHALLENGE_VERSION must match the registry
SDK_VERSION = "1"
