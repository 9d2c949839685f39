"""Bytes to `Project`: defensive archive intake, `prism.yaml`, entrypoints. No HTTP, no database."""
