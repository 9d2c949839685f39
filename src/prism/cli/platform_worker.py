"""`prism-worker`: the worker under the command Platform's install script gives its sidecar.

`deploy/swarm/install-swarm.sh` starts the challenge's worker service as
`prism-worker --interval-seconds 5` (the reference evaluator's command). This is `prism worker`
with that flag read as PRISM_WORKER_POLL_SECONDS, so the sidecar runs PRISM unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="prism-worker", description="PRISM's worker (Platform's sidecar command).")
    parser.add_argument("--interval-seconds", type=float, help="pause between polls of an empty queue")
    parser.add_argument("--once", action="store_true", help="process at most one submission, then exit")
    parser.add_argument("--drain", action="store_true", help="process until the queue is empty, then exit")
    args = parser.parse_args(argv)
    if args.interval_seconds is not None:
        if args.interval_seconds <= 0:
            parser.error("--interval-seconds must be positive")
        os.environ["PRISM_WORKER_POLL_SECONDS"] = str(args.interval_seconds)
    from prism.cli import main as prism_main

    sys.argv = ["prism", "worker", *(["--once"] if args.once else []), *(["--drain"] if args.drain else [])]
    prism_main()
