"""Substrate (sr25519) request signatures for the optional public submission route.

The signed message binds everything that makes a request unique, so a signature cannot be
lifted onto another body, challenge, time or nonce:

    prism-submission:v1\\n{challenge_slug}\\n{hotkey}\\n{nonce}\\n{timestamp}\\n{sha256(body) hex}

Wallets such as polkadot.js sign `<Bytes>message</Bytes>`; both forms verify.
"""

from __future__ import annotations

import hashlib

import sr25519

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


class InvalidHotkey(ValueError):
    pass


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in _B58_INDEX:
            raise InvalidHotkey(f"character {char!r} is not base58")
        number = number * 58 + _B58_INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading = len(text) - len(text.lstrip("1"))
    return b"\0" * leading + body


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58[rem] + out
    leading = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading + out


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(b"SS58PRE" + payload, digest_size=64).digest()[:2]


def ss58_decode(address: str) -> bytes:
    """The 32-byte public key inside an SS58 address; `InvalidHotkey` if it is not one."""
    if not 40 <= len(address) <= 60:
        raise InvalidHotkey("an SS58 hotkey has 46 to 48 characters")
    raw = _b58decode(address)
    prefix_len = 2 if raw and raw[0] & 0b0100_0000 else 1
    if len(raw) != prefix_len + 32 + 2:
        raise InvalidHotkey("an SS58 hotkey must hold a 32-byte public key")
    payload, checksum = raw[:-2], raw[-2:]
    if _checksum(payload) != checksum:
        raise InvalidHotkey("SS58 checksum does not match")
    return payload[prefix_len:]


def ss58_encode(public_key: bytes, ss58_format: int = 42) -> str:
    if len(public_key) != 32:
        raise InvalidHotkey("a public key has 32 bytes")
    if ss58_format < 64:
        prefix = bytes([ss58_format])
    else:
        prefix = bytes(
            [((ss58_format & 0b1111_1100) >> 2) | 0b0100_0000, (ss58_format >> 8) | ((ss58_format & 0b11) << 6)]
        )
    payload = prefix + public_key
    return _b58encode(payload + _checksum(payload))


def canonical_message(*, challenge_slug: str, hotkey: str, nonce: str, timestamp: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"prism-submission:v1\n{challenge_slug}\n{hotkey}\n{nonce}\n{timestamp}\n{digest}".encode()


def verify_signature(*, hotkey: str, signature_hex: str, message: bytes) -> bool:
    """True when `signature_hex` is the hotkey's sr25519 signature of `message` (or its wrapped form)."""
    public_key = ss58_decode(hotkey)
    text = signature_hex.removeprefix("0x")
    try:
        signature = bytes.fromhex(text)
    except ValueError:
        return False
    if len(signature) != 64:
        return False
    for candidate in (message, b"<Bytes>" + message + b"</Bytes>"):
        if sr25519.verify(signature, candidate, public_key):
            return True
    return False
