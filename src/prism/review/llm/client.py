"""The one seam to the provider: send messages with the two tools, get a `ChatReply` back.

Any OpenAI-compatible chat-completions endpoint works (OpenRouter, vLLM, Ollama, llama.cpp's
server) through the `openai` SDK. The SDK's own retries are off (`max_retries=0`): the review
decides when to retry and always starts a fresh conversation. Every SDK exception becomes an
`LlmProviderError` here, with its message redacted of known secrets, so nothing above this module
sees a third-party exception or a key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletion

from prism.review.llm.config import LlmReviewConfig
from prism.review.llm.errors import LlmProviderError
from prism.review.llm.protocol import TOOLS
from prism.review.llm.redact import redact

# Local servers (vLLM, llama.cpp) often need no key, but the SDK insists on one. A placeholder
# also stops the SDK from falling back to OPENAI_API_KEY and sending that key to another host.
NO_KEY = "prism-no-key"
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatReply:
    content: str | None
    tool_calls: tuple[ToolCallOut, ...]
    finish_reason: str | None

    def as_message(self) -> dict[str, Any]:
        """The assistant message to send back when the conversation continues."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return message


def make_client(config: LlmReviewConfig) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=config.base_url,
        api_key=config.api_key or NO_KEY,
        timeout=config.timeout_seconds,
        max_retries=0,
    )


class OpenAIChat:
    """Chat completions with PRISM's tools, temperature 0 and bounded output."""

    def __init__(self, config: LlmReviewConfig, client: openai.OpenAI | None = None) -> None:
        self._config = config
        self._client = client or make_client(config)

    def complete(self, messages: list[dict[str, Any]]) -> ChatReply:
        config = self._config
        try:
            completion = self._client.chat.completions.create(
                model=config.model,
                messages=cast(Any, messages),
                tools=cast(Any, TOOLS),
                tool_choice=config.tool_choice,
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                timeout=config.timeout_seconds,
            )
        except openai.APITimeoutError:
            raise LlmProviderError(f"the provider did not answer within {config.timeout_seconds}s") from None
        except openai.APIStatusError as exc:
            raise LlmProviderError(
                f"the provider answered HTTP {exc.status_code}: {self._clean(exc.message)}"
            ) from None
        except openai.APIConnectionError as exc:
            raise LlmProviderError(f"cannot reach the provider: {self._clean(str(exc))}") from None
        except openai.OpenAIError as exc:
            raise LlmProviderError(f"provider error {type(exc).__name__}: {self._clean(str(exc))}") from None
        except ValueError as exc:  # the SDK lets a malformed JSON body through as JSONDecodeError
            raise LlmProviderError(f"the provider's answer is not valid JSON: {self._clean(str(exc))}") from None
        return self._reply(completion)

    def _clean(self, text: str) -> str:
        return redact(text, self._config.secrets)[:MAX_ERROR_CHARS]

    def _reply(self, completion: object) -> ChatReply:
        if not isinstance(completion, ChatCompletion):
            raise LlmProviderError("the provider's answer is not a chat completion")
        try:
            choice = completion.choices[0]
            message = choice.message
            calls = tuple(
                ToolCallOut(
                    call_id=str(call.id),
                    name=str(call.function.name) if call.type == "function" else f"<{call.type}>",
                    arguments=_arguments_text(call.function.arguments if call.type == "function" else ""),
                )
                for call in (message.tool_calls or [])
            )
            return ChatReply(content=message.content, tool_calls=calls, finish_reason=choice.finish_reason)
        except (AttributeError, IndexError, TypeError) as exc:
            # Built without validation, a completion missing fields surfaces only when read.
            raise LlmProviderError(f"the provider's completion is incomplete: {type(exc).__name__}") from None


def _arguments_text(arguments: object) -> str:
    # Some servers send arguments as an object instead of a JSON string.
    return arguments if isinstance(arguments, str) else json.dumps(arguments)
