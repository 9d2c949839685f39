"""The challenge-owned evaluation: the harness that runs inside the sandbox, the locked data,
the architecture graph, and the manifest that the host builds and validates.

Host side (never imports submitted code): `data`, `jobs`, `runner`, `manifest`, `evaluate`.
Sandbox side: `harness` (the trusted recorder) and `model_proc` (the miner's process), which talk
over `wire` (raw tensor frames, never pickle).
"""
