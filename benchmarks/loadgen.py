"""A load generator in its own process: raw HTTP/1.1 over keep-alive connections, nothing else.

The benchmarks used to run httpx clients in threads of their own process: at 50 clients the
client, not the server, set the pace (a health check's p99 was the client's queue). This one
sends requests prepared in advance, reads each answer by its Content-Length, and reports its
own CPU so a reader sees what it took from the cores the server runs on.

Closed loop (`rate` 0): `connections` clients, each sending its next request when the last
answer arrived; the figure is the most the server does. Open loop (`rate` > 0): requests are
due at a fixed rate whether or not earlier ones were answered; a request's latency counts from
when it was due, so a server that falls behind is charged for the wait (no coordinated omission).

    python benchmarks/loadgen.py URL REQUESTS_FILE --connections 50 [--rate 200]  -> JSON on stdout

REQUESTS_FILE holds the raw requests, each prefixed by its length (`write_requests`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

_LENGTH = struct.Struct("<I")


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: bench", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def write_requests(path: Path, requests: Sequence[bytes]) -> None:
    with path.open("wb") as out:
        for request in requests:
            out.write(_LENGTH.pack(len(request)))
            out.write(request)


def _read_requests(path: Path) -> list[bytes]:
    data = path.read_bytes()
    found, at = [], 0
    while at < len(data):
        (size,) = _LENGTH.unpack_from(data, at)
        found.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return found


@dataclass(frozen=True, slots=True)
class LoadResult:
    latencies: list[float]  # seconds, one per request
    statuses: dict[int, int]
    wall_seconds: float
    client_cpu_seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall_seconds

    def quantile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class _Connection:
    """One keep-alive connection on a plain non-blocking socket: a StreamReader woke and copied
    so often on a 2 MB answer that the client, not the server, set the latency."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.pending = bytearray()

    async def exchange(self, request: bytes) -> int:
        loop = asyncio.get_running_loop()
        if self.sock is None:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setblocking(False)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(self.sock, (self.host, self.port))
            self.pending = bytearray()
        sock, data = self.sock, self.pending
        await loop.sock_sendall(sock, request)
        while (end := data.find(b"\r\n\r\n")) < 0:
            data += await self._recv(loop, sock, 1 << 16)
        head = bytes(data[: end + 4]).lower()
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        length = int(head[at + 17 : head.index(b"\r\n", at + 2)]) if at >= 0 else 0
        need = end + 4 + length
        while len(data) < need:
            data += await self._recv(loop, sock, need - len(data))
        del data[:need]
        if b"\r\nconnection: close" in head:
            self.close()
        return status

    async def _recv(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
        chunk = await loop.sock_recv(sock, size)
        if not chunk:
            self.close()
            raise ConnectionError("the server closed the connection mid-answer")
        return chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None


async def _closed(host: str, port: int, requests: list[bytes], connections: int) -> tuple[list[float], list[int]]:
    latencies = [0.0] * len(requests)
    statuses = [0] * len(requests)
    pending = iter(range(len(requests)))

    async def client() -> None:
        connection = _Connection(host, port)
        for index in pending:
            started = time.perf_counter()
            statuses[index] = await connection.exchange(requests[index])
            latencies[index] = time.perf_counter() - started
        connection.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return latencies, statuses


async def _open(
    host: str, port: int, requests: list[bytes], connections: int, rate: float
) -> tuple[list[float], list[int]]:
    latencies = [0.0] * len(requests)
    statuses = [0] * len(requests)
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(_Connection(host, port))

    async def one(index: int, due: float) -> None:
        connection = await idle.get()  # waiting for a free connection is part of the latency
        try:
            statuses[index] = await connection.exchange(requests[index])
        finally:
            idle.put_nowait(connection)
        latencies[index] = time.perf_counter() - due

    tasks = []
    start = time.perf_counter() + 0.05
    for index in range(len(requests)):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(index, due)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().close()
    return latencies, statuses


def _sequential(host: str, port: int, requests: list[bytes]) -> tuple[list[float], list[int]]:
    """One connection, one request at a time, blocking reads into one reused buffer: how
    Platform's validator asks for weights. (Reads into fresh buffers, or through asyncio's
    non-blocking reads, cost this client milliseconds per 2 MB answer: its time, not the server's.)"""
    latencies, statuses = [0.0] * len(requests), [0] * len(requests)
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray(1 << 20)
    filled = 0
    try:
        for index, request in enumerate(requests):
            started = time.perf_counter()
            sock.sendall(request)
            while (end := buffer.find(b"\r\n\r\n", 0, filled)) < 0:
                filled += _recv_into(sock, buffer, filled)
            head = bytes(buffer[: end + 4]).lower()
            at = head.find(b"\r\ncontent-length:")
            need = end + 4 + (int(head[at + 17 : head.index(b"\r\n", at + 2)]) if at >= 0 else 0)
            if need > len(buffer):
                buffer.extend(bytes(need - len(buffer)))
            while filled < need:
                filled += _recv_into(sock, buffer, filled)
            buffer[: filled - need] = buffer[need:filled]  # a pipelined surplus (none in practice)
            filled -= need
            latencies[index] = time.perf_counter() - started
            statuses[index] = int(head[9:12])
            if b"\r\nconnection: close" in head:
                sock.close()
                sock = socket.create_connection((host, port))
    finally:
        sock.close()
    return latencies, statuses


def _recv_into(sock: socket.socket, buffer: bytearray, filled: int) -> int:
    if filled == len(buffer):
        buffer.extend(bytes(len(buffer)))
    got = sock.recv_into(memoryview(buffer)[filled:])
    if not got:
        raise ConnectionError("the server closed the connection mid-answer")
    return got


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def generate(url: str, requests: list[bytes], *, connections: int, rate: float) -> LoadResult:
    """Run the load in this process (the benchmarks call `run_load`, which starts a new one)."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    cpu, started = _cpu(), time.perf_counter()
    if rate > 0:
        latencies, statuses = asyncio.run(_open(host, port, requests, connections, rate))
    elif connections == 1:
        latencies, statuses = _sequential(host, port, requests)
    else:
        latencies, statuses = asyncio.run(_closed(host, port, requests, connections))
    wall, used = time.perf_counter() - started, _cpu() - cpu
    counted: dict[int, int] = {}
    for status in statuses:
        counted[status] = counted.get(status, 0) + 1
    return LoadResult(latencies, counted, wall, used)


def run_load(url: str, requests: Sequence[bytes], work: Path, *, connections: int, rate: float = 0.0) -> LoadResult:
    """`generate` in a new process, so the client shares neither the caller's CPU time nor its GIL."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "requests.bin"
    write_requests(path, requests)
    command = [sys.executable, __file__, url, str(path), "--connections", str(connections), "--rate", str(rate)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    document = json.loads(out)
    return LoadResult(
        document["latencies"],
        {int(k): v for k, v in document["statuses"].items()},
        document["wall_seconds"],
        document["client_cpu_seconds"],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("requests", type=Path)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second (open loop); 0: closed loop")
    args = parser.parse_args()
    result = generate(args.url, _read_requests(args.requests), connections=args.connections, rate=args.rate)
    json.dump(
        {
            "latencies": result.latencies,
            "statuses": result.statuses,
            "wall_seconds": result.wall_seconds,
            "client_cpu_seconds": result.client_cpu_seconds,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
