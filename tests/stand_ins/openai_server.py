"""A stand-in OpenAI-compatible chat-completions server on 127.0.0.1, driven by a script.

It serves `POST /v1/chat/completions` over a real socket so the real `openai` client is exercised
end to end. Each test queues the replies it wants, in order: tool calls, plain content, an HTTP
error status, a malformed body, or a delay long enough to trip the client's timeout. When the
queue is empty an optional `responder` answers from the request; otherwise the server answers 503
so that an under-scripted test fails loudly instead of hanging. Every request is recorded
(headers and JSON body) so tests can assert on prompts, fencing and secrets.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    # A mapping is sent as JSON; a string is sent verbatim (to script unparseable arguments).
    arguments: Mapping[str, Any] | str


@dataclass(frozen=True, slots=True)
class Reply:
    tool_calls: tuple[ToolCall, ...] = ()
    content: str | None = None
    status: int = 200
    raw_body: str | None = None  # sent as-is instead of a completion (malformed JSON, say)
    delay: float = 0.0  # seconds to wait before answering
    finish_reason: str | None = None

    @classmethod
    def tools(cls, *calls: ToolCall) -> Reply:
        return cls(tool_calls=calls)

    @classmethod
    def text(cls, content: str) -> Reply:
        return cls(content=content)

    @classmethod
    def error(cls, status: int, message: str = "stand-in error") -> Reply:
        return cls(status=status, raw_body=json.dumps({"error": {"message": message, "type": "server_error"}}))

    @classmethod
    def malformed(cls) -> Reply:
        return cls(raw_body='{"id": "chatcmpl-broken", "choices": [ {"message": ')

    @classmethod
    def slow(cls, delay: float) -> Reply:
        return cls(delay=delay, content="too late")


def mermaid_call(diagram: str = "flowchart TD\n  A[build_model] --> B[nn.Linear]", notes: str = "") -> ToolCall:
    return ToolCall("submit_mermaid", {"mermaid": diagram, "notes": notes})


def verdict_call(
    verdict: str,
    *,
    reason: str = "scripted",
    evidence: list[dict[str, Any]] | None = None,
    rule_ids: list[str] | None = None,
    confidence: float = 0.9,
) -> ToolCall:
    return ToolCall(
        "submit_verdict",
        {
            "verdict": verdict,
            "reason": reason,
            "rule_ids": rule_ids or [],
            "confidence": confidence,
            "evidence": evidence or [],
        },
    )


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    def text(self) -> str:
        """Everything the request carried, headers included, for leak checks."""
        return json.dumps(dict(self.headers)) + json.dumps(self.body)


Responder = Callable[[RecordedRequest], Reply]


@dataclass
class _State:
    queue: deque[Reply] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    responder: Responder | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    ids: itertools.count[int] = field(default_factory=itertools.count)


def _completion(reply: Reply, model: str, serial: int) -> dict[str, Any]:
    tool_calls = [
        {
            "id": f"call_{serial}_{index}",
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments),
            },
        }
        for index, call in enumerate(reply.tool_calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    finish = reply.finish_reason or ("tool_calls" if tool_calls else "stop")
    return {
        "id": f"chatcmpl-{serial}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"_unparseable": raw.decode("utf-8", "replace")}
        request = RecordedRequest(path=self.path, headers=dict(self.headers.items()), body=body)
        with state.lock:
            state.requests.append(request)
            serial = next(state.ids)
            reply = state.queue.popleft() if state.queue else None
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}))
            return
        if reply is None and state.responder is not None:
            reply = state.responder(request)
        if reply is None:
            self._send(503, json.dumps({"error": {"message": "stand-in: script exhausted"}}))
            return
        if reply.delay and state.stopping.wait(reply.delay):
            return
        if reply.raw_body is not None:
            self._send(reply.status, reply.raw_body)
        else:
            self._send(reply.status, json.dumps(_completion(reply, str(body.get("model", "")), serial)))

    def _send(self, status: int, text: str) -> None:
        data = text.encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing to answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class StandInOpenAI:
    """Use as a context manager: `with StandInOpenAI() as server: server.script(...)`."""

    def __init__(self, responder: Responder | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State(responder=responder)
        # A short poll interval keeps shutdown (one per test) from costing half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="stand-in-openai", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._server.state.lock:
            self._server.state.queue.extend(replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._server.state.lock:
            return list(self._server.state.requests)

    @property
    def unused(self) -> int:
        with self._server.state.lock:
            return len(self._server.state.queue)

    def start(self) -> StandInOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StandInOpenAI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
