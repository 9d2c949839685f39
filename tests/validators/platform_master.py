"""A stand-in for Platform's master, speaking its real routes and shapes over a real socket.

What it does is what `base.master` does (read in /work/ref/platform, not copied):

- polls the challenge's `GET /internal/v1/work_units` with `Authorization: Bearer <token>` and
  `X-Base-Challenge-Slug`, 10 s timeout, 3 tries; a unit without `task_id`/`job_id` becomes
  exactly one `gpu` assignment, `work_unit_id` = the unit's `submission_id`, `submission_ref`
  = its `submission_ref`, `resume_checkpoint_ref` lifted out of the payload; idempotent per
  work unit id;
- each pass: validators whose heartbeat is older than the timeout go offline; in-flight units of
  an offline validator or past their deadline go back to pending (or fail after `max_attempts`);
  pending units go to the least-loaded online `gpu` validator (one gpu unit at a time each),
  ties broken by a seeded random choice;
- validator routes signed with `X-Hotkey`/`X-Signature`/`X-Nonce`/`X-Timestamp` over
  `METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nsha256(body)`: register, heartbeat, assignments pull
  (assigned → running with a lease deadline), progress, result (terminal, idempotent).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request

from prism.api.signatures import verify_signature

RESUME_CHECKPOINT_PAYLOAD_KEY = "resume_checkpoint_ref"


def canonical_request(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return "\n".join((method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()))


@dataclass
class Assignment:
    id: str
    challenge_slug: str
    work_unit_id: str
    submission_ref: str
    payload: dict[str, Any]
    checkpoint_ref: str | None
    status: str = "pending"
    assigned_validator_hotkey: str | None = None
    attempt_count: int = 0
    max_attempts: int = 3
    deadline_at: float | None = None
    result: dict[str, Any] | None = None
    history: list[str] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "challenge_slug": self.challenge_slug,
            "work_unit_id": self.work_unit_id,
            "submission_ref": self.submission_ref,
            "payload": dict(self.payload),
            "required_capability": "gpu",
            "status": self.status,
            "attempt_count": self.attempt_count,
            "max_attempts": self.max_attempts,
            "deadline_at": None,
            "last_progress_at": None,
            "checkpoint_ref": self.checkpoint_ref,
        }


class Master:
    def __init__(
        self,
        *,
        challenge_url: str,
        token: str,
        slug: str = "prism",
        interval: float = 0.5,
        heartbeat_timeout: float = 3.0,
        lease_seconds: float = 900.0,
        seed: int = 7,
    ) -> None:
        self.challenge_url = challenge_url.rstrip("/")
        self.token = token
        self.slug = slug
        self.interval = interval
        self.heartbeat_timeout = heartbeat_timeout
        self.lease_seconds = lease_seconds
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.validators: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, Assignment] = {}
        self.nonces: set[tuple[str, str]] = set()
        self.polls = 0
        self.stopped = threading.Event()
        self.app = self._build_app()

    # -- orchestration --------------------------------------------------------------------

    def fetch_work_units(self) -> list[dict[str, Any]] | None:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "X-Base-Challenge-Slug": self.slug,
            "Accept": "application/json",
        }
        for _attempt in range(3):
            try:
                response = httpx.get(f"{self.challenge_url}/internal/v1/work_units", headers=headers, timeout=10.0)
                response.raise_for_status()
                units: list[dict[str, Any]] = list(dict(response.json()).get("work_units") or [])
                return units
            except Exception:  # noqa: S112 - Platform logs, retries, then skips the challenge
                continue
        return None

    def run_once(self) -> None:
        units = self.fetch_work_units()
        with self.lock:
            self.polls += 1
            for unit in units or []:
                if unit.get("task_id") and unit.get("job_id"):
                    continue  # agent-challenge shape; PRISM never sends it
                work_unit_id = str(unit.get("submission_id"))
                if any(a.work_unit_id == work_unit_id for a in self.assignments.values()):
                    continue
                payload = dict(unit.get("payload") or {})
                checkpoint = payload.pop(RESUME_CHECKPOINT_PAYLOAD_KEY, None)
                assignment = Assignment(
                    id=str(uuid.uuid4()),
                    challenge_slug=self.slug,
                    work_unit_id=work_unit_id,
                    submission_ref=str(unit.get("submission_ref") or ""),
                    payload=payload,
                    checkpoint_ref=str(checkpoint) if checkpoint else None,
                )
                self.assignments[assignment.id] = assignment
            now = time.time()
            online = {h for h, v in self.validators.items() if now - v["last_seen"] <= self.heartbeat_timeout}
            for assignment in self.assignments.values():
                if assignment.status not in ("assigned", "running"):
                    continue
                offline = assignment.assigned_validator_hotkey not in online
                expired = assignment.deadline_at is not None and assignment.deadline_at < now
                if not (offline or expired):
                    continue
                if assignment.attempt_count >= assignment.max_attempts:
                    assignment.status = "failed"
                    continue
                assignment.history.append(f"reclaimed from {assignment.assigned_validator_hotkey}")
                assignment.status = "pending"
                assignment.assigned_validator_hotkey = None
                assignment.deadline_at = None
            load = {h: 0 for h in sorted(online) if "gpu" in self.validators[h]["capabilities"]}
            for assignment in self.assignments.values():
                if assignment.status in ("assigned", "running") and assignment.assigned_validator_hotkey in load:
                    load[assignment.assigned_validator_hotkey] += 1
            for assignment in self.assignments.values():
                if assignment.status != "pending":
                    continue
                eligible = [h for h, count in load.items() if count < 1]  # gpu concurrency 1
                if not eligible:
                    continue
                lowest = min(load[h] for h in eligible)
                chosen = self.rng.choice(sorted(h for h in eligible if load[h] == lowest))
                assignment.status = "assigned"
                assignment.assigned_validator_hotkey = chosen
                assignment.attempt_count += 1
                assignment.history.append(f"assigned to {chosen}")
                load[chosen] += 1

    def loop(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # noqa: S112 - one failing pass never stops orchestration
                continue

    # -- validator routes --------------------------------------------------------------------

    async def _verified(self, request: Request) -> tuple[str, dict[str, Any]]:
        body = await request.body()
        headers = request.headers
        hotkey, signature = headers.get("x-hotkey"), headers.get("x-signature")
        nonce, timestamp = headers.get("x-nonce"), headers.get("x-timestamp")
        if not (hotkey and signature and nonce and timestamp):
            raise HTTPException(401, "invalid signed request")
        if abs(time.time() - int(timestamp)) > 300:
            raise HTTPException(401, "invalid signed request")
        message = canonical_request(request.method, request.url.path, timestamp, nonce, body).encode()
        if not verify_signature(hotkey=hotkey, signature_hex=signature, message=message):
            raise HTTPException(401, "invalid signed request")
        with self.lock:
            if (hotkey, nonce) in self.nonces:
                raise HTTPException(409, "replayed request")
            self.nonces.add((hotkey, nonce))
        import json

        return hotkey, (json.loads(body) if body else {})

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/validators/register")
        async def register(request: Request) -> dict[str, Any]:
            hotkey, body = await self._verified(request)
            with self.lock:
                self.validators[hotkey] = {
                    "capabilities": list(body.get("capabilities") or []),
                    "last_seen": time.time(),
                }
            return {"hotkey": hotkey, "status": "online", "heartbeat_interval_seconds": 1}

        @app.post("/v1/validators/heartbeat")
        async def heartbeat(request: Request) -> dict[str, Any]:
            hotkey, _ = await self._verified(request)
            with self.lock:
                if hotkey not in self.validators:
                    raise HTTPException(404, "validator not registered")
                self.validators[hotkey]["last_seen"] = time.time()
            return {"hotkey": hotkey, "status": "online"}

        @app.post("/v1/assignments/pull")
        async def pull(request: Request) -> dict[str, Any]:
            hotkey, _ = await self._verified(request)
            pulled = []
            with self.lock:
                for assignment in self.assignments.values():
                    if assignment.assigned_validator_hotkey != hotkey or assignment.status not in (
                        "assigned",
                        "running",
                    ):
                        continue
                    if assignment.status == "assigned":
                        assignment.status = "running"
                        assignment.deadline_at = time.time() + self.lease_seconds
                    pulled.append(assignment.view())
            return {"assignments": pulled}

        @app.post("/v1/assignments/{assignment_id}/progress")
        async def progress(assignment_id: str, request: Request) -> dict[str, Any]:
            hotkey, _ = await self._verified(request)
            with self.lock:
                assignment = self._owned(assignment_id, hotkey)
                if assignment.status != "running":
                    raise HTTPException(409, "assignment is not running")
                assignment.deadline_at = time.time() + self.lease_seconds
            return {"status": assignment.status}

        @app.post("/v1/assignments/{assignment_id}/result")
        async def result(assignment_id: str, request: Request) -> dict[str, Any]:
            hotkey, body = await self._verified(request)
            with self.lock:
                assignment = self._owned(assignment_id, hotkey)
                if assignment.status in ("completed", "failed"):
                    return {"status": assignment.status, "result_ref": assignment.id, "idempotent": True}
                assignment.result = dict(body)
                assignment.status = "completed" if body.get("success") else "failed"
            return {"status": assignment.status, "result_ref": assignment.id, "idempotent": False}

        return app

    def _owned(self, assignment_id: str, hotkey: str) -> Assignment:
        assignment = self.assignments.get(assignment_id)
        if assignment is None:
            raise HTTPException(404, "assignment not found")
        if assignment.assigned_validator_hotkey != hotkey:
            raise HTTPException(403, "assignment not owned by caller")
        return assignment
