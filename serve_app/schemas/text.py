"""Text a request may carry: valid Unicode only. JSON lets a client send a lone UTF-16 surrogate ("\\ud800"),
which Python keeps in a str but nothing downstream can encode (the tokenizer, Redis, the logs): such a request
is refused with a 400 naming where the surrogate is, before any check or model reads it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator
from pydantic_core import PydanticCustomError


def unpaired_surrogate_at(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """The path of the first string in `value` (parsed JSON) that holds an unpaired surrogate, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if (found := unpaired_surrogate_at(item, (*path, key))) is not None:
            return found
    return None


def refuse_unpaired_surrogates(data: Any) -> Any:
    """The data unchanged, or a validation error (a 400)."""
    if (path := unpaired_surrogate_at(data)) is not None:
        where = ".".join(str(part) for part in path) or "the body"
        raise PydanticCustomError(
            "unpaired_surrogate",
            "'{where}' holds an unpaired UTF-16 surrogate (such as \\ud800), which is not valid Unicode text",
            {"where": where},
        )
    return data


class UnicodeRequest(BaseModel):
    """A request body whose every string must be valid Unicode (the chat and moderation requests)."""

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        return refuse_unpaired_surrogates(data)
