"""LiteLLM's Generic Guardrail API (`POST /beta/litellm_basic_guardrail_api`), as LiteLLM 1.108.7 sends and reads
it (`litellm/types/proxy/guardrails/guardrail_hooks/generic_guardrail_api.py`; docs/litellm.md). Fields SafeServe
does not use are ignored, so a newer LiteLLM that sends more keeps working."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from serve_app.schemas.chat import schema_strings
from serve_app.schemas.text import UnicodeRequest

GuardrailAction = Literal["NONE", "BLOCKED", "GUARDRAIL_INTERVENED"]


class GuardrailMessage(BaseModel):
    """A chat message as LiteLLM forwards it (OpenAI format, any role, text or multimodal parts)."""

    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "\n".join(part["text"] for part in parts if isinstance(part.get("text"), str))


class GuardrailFunction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    arguments: str | None = None


class GuardrailToolCall(BaseModel):
    """A tool call of the answer (LiteLLM sends whole calls, or stream chunks of them, in OpenAI's shape)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    function: GuardrailFunction | None = None


class GuardrailRequestData(BaseModel):
    """Who the LiteLLM call is for: the user_api_key_* metadata of LiteLLM's virtual key."""

    model_config = ConfigDict(extra="ignore")

    user_api_key_user_id: str | None = None
    user_api_key_team_id: str | None = None


class GuardrailRequest(UnicodeRequest):
    model_config = ConfigDict(extra="ignore")

    input_type: Literal["request", "response"]
    texts: list[str] | None = Field(None, max_length=1024)
    structured_messages: list[GuardrailMessage] | None = Field(None, max_length=1024)
    tools: list[dict[str, Any]] | None = Field(None, max_length=128)
    tool_calls: list[GuardrailToolCall] | None = Field(None, max_length=128)
    model: str | None = None
    request_data: GuardrailRequestData = GuardrailRequestData()
    litellm_call_id: str | None = Field(None, max_length=200)
    litellm_trace_id: str | None = None
    request_headers: dict[str, str] | None = None

    def untrusted_texts(self) -> list[str]:
        """The request's texts the input stack screens: every message but the assistant's when LiteLLM sends
        the messages (as the chat route screens them), else the texts it extracted."""
        if self.structured_messages:
            return [m.text for m in self.structured_messages if m.role != "assistant" and m.text]
        return [text for text in self.texts or () if text]

    def tool_names(self) -> list[str]:
        """The tools offered, by name: a function's name, a built-in tool's type (e.g. `code_interpreter`)."""
        names = []
        for tool in self.tools or ():
            function = tool.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            names.append(str(name or tool.get("type") or ""))
        return names

    def tools_text(self) -> str:
        """What the caller wrote into its tool definitions, screened as one more turn (as the chat route does)."""
        return "\n".join(schema_strings(self.tools or []))


class GuardrailResponse(BaseModel):
    action: GuardrailAction
    blocked_reason: str | None = None
    texts: list[str] | None = Field(None, description="With GUARDRAIL_INTERVENED: the texts, redacted.")
    stream_holdback_chars: list[int] | None = Field(
        None,
        description="Per text: the characters at its end that LiteLLM withholds from a stream until its next "
        "call (streaming_transform_mode incremental_diff).",
    )
