"""`/v1/chat/completions`, in the OpenAI format."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from serve_app.schemas.text import UnicodeRequest

Role = Literal["system", "developer", "user", "assistant", "tool"]


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Role
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallOut] | None = Field(None, description="An assistant turn's calls, as the model made them.")
    tool_call_id: str | None = Field(None, description="A tool message: the call it answers.")

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content)


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


class Tool(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["function"] = "function"
    function: FunctionSpec


class NamedToolChoice(BaseModel):
    type: Literal["function"] = "function"
    function: FunctionSpec


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(UnicodeRequest):
    # Unknown fields are ignored, as OpenAI-compatible servers commonly do, so newer clients keep working.
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=1, description="Only one choice per request is supported.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    # int64, what torch.manual_seed and OpenAI-compatible servers take; anything else is a 400, not a failed batch.
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    user: str | None = None
    stop: str | list[str] | None = Field(None, description="Up to 4 stop sequences, as OpenAI takes them.")
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None

    @field_validator("messages")
    @classmethod
    def _has_content(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        for index, message in enumerate(messages):
            if message.role in ("user", "system", "developer", "tool") and not message.text.strip():
                raise ValueError(f"message {index} ({message.role}) has empty content")
        return messages

    @model_validator(mode="after")
    def _ends_with_a_turn_to_answer(self) -> ChatCompletionRequest:
        if self.messages[-1].role == "assistant":
            raise ValueError("the last message must not be from the assistant")
        return self

    @model_validator(mode="after")
    def _tool_choice_names_a_tool(self) -> ChatCompletionRequest:
        if isinstance(self.tool_choice, NamedToolChoice) and self.tool_choice.function.name not in self.tool_names():
            raise ValueError(f"tool_choice names '{self.tool_choice.function.name}', which is not in tools")
        return self

    @field_validator("stop")
    @classmethod
    def _stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        stops = [stop] if isinstance(stop, str) else stop or []
        if len(stops) > 4 or any(not s or len(s) > 64 for s in stops):
            raise ValueError("at most 4 stop sequences of 1 to 64 characters")
        return stop

    def stop_sequences(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    def tool_names(self) -> list[str]:
        return [tool.function.name for tool in self.tools or []]

    @cached_property
    def tools_text(self) -> str:
        """What the caller wrote into its tool definitions (names, descriptions, parameter names and schemas), as
        the model will read it. An injection can hide there as well as in a message, so it is screened, limited
        and counted like one (computed once per request)."""
        return "\n".join(schema_strings([tool.model_dump(exclude_none=True) for tool in self.tools or []]))

    def prompt_texts(self) -> list[str]:
        """Every text the model is given, which the size limits and token admission count: the messages, the
        calls of assistant turns (their arguments can be far longer than any content), the tool definitions."""
        calls = [
            f"{call.function.name} {call.function.arguments}" for m in self.messages for call in m.tool_calls or ()
        ]
        return [m.text for m in self.messages] + calls + ([self.tools_text] if self.tools else [])

    def requested_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "content_filter", "tool_calls"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    safeserve_review_id: str | None = Field(
        None, description="Set when the answer is held for human review: GET /v1/reviews/{id} returns it once approved."
    )


class ToolCallDelta(ToolCallOut):
    index: int


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length", "content_filter", "tool_calls"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]


# JSON Schema's and OpenAI's own keywords: structure, not something the caller wrote.
_SCHEMA_KEYWORDS = frozenset(
    {"type", "function", "name", "description", "parameters", "properties", "required", "items", "enum", "strict"}
)


def schema_strings(value: object) -> list[str]:
    """The strings of a JSON value, keys included, without schema keywords and `type` values."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in schema_strings(item)]
    if isinstance(value, dict):
        strings = []
        for key, item in value.items():
            if key not in _SCHEMA_KEYWORDS:
                strings.append(key)
            if key != "type":
                strings += schema_strings(item)
        return strings
    return []
