"""Admin API bodies: API keys and users."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from serve_app.config import Limits

# `gateway`: a service key for another gateway (LiteLLM) calling the guardrail route; it may name the end user
# a check is for (serve_app/routers/litellm_guardrail.py), and nothing else beyond a user key.
Role = Literal["user", "reviewer", "admin", "gateway"]
UserId = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:-]+$")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = UserId
    tier: str = Field(min_length=1)
    role: Role = "user"
    limits: Limits | None = Field(None, description="Overrides of the tier's limits for this key, field by field.")
    reason: str = Field("", max_length=500, description="Why: written to the audit entry.")


class ApiKeyInfo(BaseModel):
    id: str
    user_id: str
    tier: str
    role: Role
    created_at: float
    limits: Limits | None = None
    revoked: bool = False
    rotated_at: float | None = None

    @computed_field
    @property
    def prefix(self) -> str:
        """How the key starts: enough to recognise it, useless to use it."""
        return f"ss-{self.id}-"


class CreatedKey(ApiKeyInfo):
    key: str = Field(description="The secret; shown only in this response.")


class Reputation(BaseModel):
    user_id: str
    score: float
    policy: Literal["standard", "strict", "suspended"]
    suspended_until: float | None = None
    updated_at: float


class UserAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="Why: written to the audit log.")


class Suspension(UserAction):
    minutes: int = Field(60, ge=1, le=60 * 24 * 365)


class Erasure(BaseModel):
    """What `DELETE /admin/users/{id}/data` removed. The audit trail keeps its entries about the user (ids,
    states and reasons, no content) and gains one recording this erasure."""

    user_id: str
    keys: list[str] = Field(description="Ids of the API keys deleted (revoked ones included).")
    incidents: int
    review_items: int
    reputation: bool = Field(description="Whether a reputation record existed and was deleted.")
    rate_limit_counters: int
