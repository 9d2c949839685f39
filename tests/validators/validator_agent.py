"""A validator process for the end-to-end test, doing what Platform's validator agent does.

register → heartbeat (a thread) → pull → for a `prism` assignment, import
`prism_challenge.validator_dispatch.dispatch_assignment` lazily and await it with
`work_unit_id`, `payload`, `broker_url`, `broker_token`, `broker_token_file` (Platform's
`PrismCycleExecutor`) → post `{success, payload}` to the master's result route; an exception
posts `success: false`. Requests to the master are signed like Platform's agent signs them.

Behaviours, for the lying validators of the test:
- `honest`: exactly the above;
- `forged_bpb`: runs honestly, then scales every recorded loss by 0.8 and rewrites bits per
  byte, the curve's hash and the figures consistently before signing (a self-consistent forgery);
- `silent`: claims its unit at PRISM and never answers (keeps heartbeating the master).

    python -m tests.validators.validator_agent --master URL --key-file F --behaviour honest [--units 1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import sr25519

from prism.evaluation.metrics import LossCurve
from prism.validators import dispatch
from prism.validators.signing import ValidatorKey


class MasterClient:
    def __init__(self, url: str, key: ValidatorKey) -> None:
        self.url = url.rstrip("/")
        self.key = key

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        nonce, timestamp = uuid.uuid4().hex, str(int(time.time()))
        canonical = "\n".join(("POST", path, timestamp, nonce, hashlib.sha256(body).hexdigest()))
        signature = sr25519.sign((self.key.public, self.key.private), canonical.encode())
        headers = {
            "X-Hotkey": self.key.hotkey,
            "X-Signature": "0x" + bytes(signature).hex(),
            "X-Nonce": nonce,
            "X-Timestamp": timestamp,
            "Content-Type": "application/json",
        }
        response = httpx.post(f"{self.url}{path}", content=body, headers=headers, timeout=15.0)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


def forge(result: dict[str, Any]) -> dict[str, Any]:
    """A lie that passes every self-consistency check: only another validator can catch it."""
    if result.get("status") != "ok":
        return result
    curve = LossCurve.decode(base64.b64decode(result["artifacts"]["loss_curve"]))
    forged = LossCurve(tuple(loss * 0.8 for loss in curve.losses_nats), curve.tokens)
    encoded = forged.encode()
    train = dict(result["figures"]["train"])
    train["bits_per_byte"] = forged.bits_per_byte()
    train["loss_curve_sha256"] = hashlib.sha256(encoded).hexdigest()
    return {
        **result,
        "figures": {**result["figures"], "train": train},
        "artifacts": {**result["artifacts"], "loss_curve": base64.b64encode(encoded).decode("ascii")},
    }


def silent(work_unit_id: str, payload: dict[str, Any]) -> None:
    """Claim the unit so PRISM's lease starts, then never report."""
    setup = dispatch.ValidatorSetup.from_environment(payload)
    client = dispatch.PrismClient(setup, work_unit_id=work_unit_id, archive_sha256=str(payload["archive_sha256"]))
    client.post(str(payload["claim_path"]), "claim", {})
    while True:
        time.sleep(3600)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--master", required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--broker-url", default="bubblewrap:")
    parser.add_argument("--behaviour", choices=("honest", "forged_bpb", "silent"), default="honest")
    parser.add_argument("--units", type=int, default=0, help="exit after this many units (0: never)")
    args = parser.parse_args()
    key = ValidatorKey.from_file(Path(args.key_file))
    master = MasterClient(args.master, key)
    master.post("/v1/validators/register", {"capabilities": ["gpu"], "version": "test"})

    def beat() -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                master.post("/v1/validators/heartbeat", {})
            time.sleep(0.5)

    threading.Thread(target=beat, daemon=True).start()
    if args.behaviour == "forged_bpb":
        honest_evaluate = dispatch._evaluate
        dispatch._evaluate = lambda job, project, sandbox: forge(honest_evaluate(job, project, sandbox))  # type: ignore[assignment]
    done = 0
    while args.units == 0 or done < args.units:
        for assignment in master.post("/v1/assignments/pull", {}).get("assignments", []):
            if assignment["status"] not in ("assigned", "running") or assignment["challenge_slug"] != "prism":
                continue
            if args.behaviour == "silent":
                silent(assignment["work_unit_id"], assignment["payload"])
            from prism_challenge.validator_dispatch import dispatch_assignment  # lazily, as Platform does

            try:
                result = asyncio.run(
                    dispatch_assignment(
                        work_unit_id=assignment["work_unit_id"],
                        payload=dict(assignment["payload"]),
                        broker_url=args.broker_url,
                        broker_token=None,
                        broker_token_file=None,
                    )
                )
                body: dict[str, Any] = {"success": True, "payload": dict(result)}
            except Exception as exc:
                body = {"success": False, "payload": {"error": str(exc)[:2000]}}
            master.post(f"/v1/assignments/{assignment['id']}/result", body)
            print(json.dumps({"work_unit_id": assignment["work_unit_id"], **body})[:400], flush=True)
            done += 1 if body["success"] else 0
        time.sleep(0.3)


if __name__ == "__main__":
    main()
