"""The envelope a validator signs: every request it makes to PRISM is one.

Platform's public proxy strips `X-Hotkey`/`X-Signature`/... from requests to PRISM, so the
signature travels in the JSON body. The signed message binds the challenge, the kind of request,
the work unit, the archive's sha256, the validator, a nonce, a timestamp and the sha256 of the
canonical JSON payload:

    prism-validator:v1 / slug / kind / work_unit_id / archive_sha256 / hotkey / nonce /
    timestamp / sha256 of the payload        (one per line, joined by "\\n")

so a signature cannot be lifted onto another unit, archive, payload, time or challenge, and the
nonce (remembered by PRISM) makes each envelope work once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sr25519

from prism.api.signatures import InvalidHotkey, ss58_decode, ss58_encode, verify_signature

Kind = Literal["claim", "archive", "progress", "result"]
KINDS: tuple[Kind, ...] = ("claim", "archive", "progress", "result")


class EnvelopeError(ValueError):
    """A malformed, unsigned or wrongly signed envelope (the API answers 400 or 401)."""

    def __init__(self, code: str, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def canonical_json(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def signed_message(
    *,
    slug: str,
    kind: str,
    work_unit_id: str,
    archive_sha256: str,
    hotkey: str,
    nonce: str,
    timestamp: int,
    payload_sha256: str,
) -> bytes:
    return (
        f"prism-validator:v1\n{slug}\n{kind}\n{work_unit_id}\n{archive_sha256}\n{hotkey}\n{nonce}\n{timestamp}\n"
        f"{payload_sha256}"
    ).encode()


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: Kind
    work_unit_id: str
    archive_sha256: str
    validator_hotkey: str
    nonce: str
    timestamp: int
    payload: Mapping[str, Any]
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "work_unit_id": self.work_unit_id,
            "archive_sha256": self.archive_sha256,
            "validator_hotkey": self.validator_hotkey,
            "nonce": self.nonce,
            "timestamp": self.timestamp,
            "payload": dict(self.payload),
            "signature": self.signature,
        }

    def message(self, slug: str) -> bytes:
        return signed_message(
            slug=slug,
            kind=self.kind,
            work_unit_id=self.work_unit_id,
            archive_sha256=self.archive_sha256,
            hotkey=self.validator_hotkey,
            nonce=self.nonce,
            timestamp=self.timestamp,
            payload_sha256=hashlib.sha256(canonical_json(dict(self.payload))).hexdigest(),
        )


def _text(data: Mapping[str, Any], key: str, *, limit: int = 128) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= limit or not value.isprintable():
        raise EnvelopeError("invalid_envelope", f"{key} must be 1 to {limit} printable characters", status=400)
    return value


def parse_envelope(data: Any, *, expected_kind: Kind) -> Envelope:
    """Shape only; `verify_envelope` checks who signed it and when."""
    if not isinstance(data, Mapping):
        raise EnvelopeError("invalid_envelope", "the body must be a JSON object", status=400)
    kind = data.get("kind")
    if kind != expected_kind:
        raise EnvelopeError("wrong_kind", f"this route takes a {expected_kind!r} envelope, not {kind!r}", status=400)
    timestamp = data.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise EnvelopeError("invalid_envelope", "timestamp must be Unix seconds as an integer", status=400)
    payload = data.get("payload", {})
    if not isinstance(payload, Mapping):
        raise EnvelopeError("invalid_envelope", "payload must be an object", status=400)
    return Envelope(
        kind=expected_kind,
        work_unit_id=_text(data, "work_unit_id"),
        archive_sha256=_text(data, "archive_sha256", limit=64),
        validator_hotkey=_text(data, "validator_hotkey", limit=64),
        nonce=_text(data, "nonce"),
        timestamp=timestamp,
        payload=payload,
        signature=_text(data, "signature", limit=130),
    )


def verify_envelope(envelope: Envelope, *, slug: str, ttl_seconds: int, now: float | None = None) -> None:
    """Fresh and signed by the hotkey it names; raises `EnvelopeError` otherwise."""
    now = time.time() if now is None else now
    if abs(now - envelope.timestamp) > ttl_seconds:
        raise EnvelopeError("stale_request", f"timestamp is outside ±{ttl_seconds}s of now")
    try:
        ss58_decode(envelope.validator_hotkey)
    except InvalidHotkey as exc:
        raise EnvelopeError("invalid_hotkey", f"validator_hotkey is not an SS58 address: {exc}", status=400) from exc
    if not verify_signature(
        hotkey=envelope.validator_hotkey, signature_hex=envelope.signature, message=envelope.message(slug)
    ):
        raise EnvelopeError("invalid_signature", "signature is not this hotkey's sr25519 signature of the envelope")


@dataclass(frozen=True, slots=True)
class ValidatorKey:
    """A validator's sr25519 hotkey (the validator side signs with it)."""

    public: bytes
    private: bytes

    @property
    def hotkey(self) -> str:
        return ss58_encode(self.public)

    @classmethod
    def from_seed(cls, seed: bytes) -> ValidatorKey:
        if len(seed) != 32:
            raise ValueError("an sr25519 seed has 32 bytes")
        public, private = sr25519.pair_from_seed(seed)
        return cls(bytes(public), bytes(private))

    @classmethod
    def from_file(cls, path: Path) -> ValidatorKey:
        """A hex seed, or a bittensor hotkey file (JSON with `secretSeed`)."""
        text = path.read_text(encoding="utf-8").strip()
        if text.startswith("{"):
            text = str(json.loads(text).get("secretSeed", ""))
        return cls.from_seed(bytes.fromhex(text.removeprefix("0x")))

    def sign(
        self,
        *,
        slug: str,
        kind: Kind,
        work_unit_id: str,
        archive_sha256: str,
        payload: Mapping[str, Any],
        nonce: str | None = None,
        timestamp: int | None = None,
    ) -> Envelope:
        unsigned = Envelope(
            kind=kind,
            work_unit_id=work_unit_id,
            archive_sha256=archive_sha256,
            validator_hotkey=self.hotkey,
            nonce=nonce or secrets.token_hex(16),
            timestamp=int(time.time()) if timestamp is None else timestamp,
            payload=dict(payload),
            signature="",
        )
        signature = sr25519.sign((self.public, self.private), unsigned.message(slug))
        return dataclasses.replace(unsigned, signature="0x" + bytes(signature).hex())
