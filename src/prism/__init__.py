"""PRISM: the evaluation service of a Bittensor subnet challenge that trusts no submission."""

__version__ = "0.1.0"
API_VERSION = "1"
CHALLENGE_VERSION = "1"
SDK_VERSION = "1"
