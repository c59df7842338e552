"""`/v1/moderations`, in the OpenAI format, plus SafeServe's own categories, action and redactions."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from serve_app.schemas.text import UnicodeRequest


class ModerationRequest(UnicodeRequest):
    model_config = ConfigDict(extra="ignore")

    input: str | list[str] = Field(min_length=1)
    model: str | None = None

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else self.input


class ModerationResult(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    safeserve_action: str = Field(description="allow, review or block, from SafeServe's own bands.")
    safeserve_categories: dict[str, float] = Field(description="Scores in SafeServe's taxonomy.")
    safeserve_redactions: list[str] = Field(
        default_factory=list,
        description="Kinds (e.g. email, card) that a chat answer would have redacted; empty when the text is blocked.",
    )


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[ModerationResult]
