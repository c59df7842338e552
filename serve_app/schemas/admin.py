"""Admin API bodies: API keys."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["user", "reviewer", "admin"]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:-]+$")
    tier: str = Field(min_length=1)
    role: Role = "user"


class ApiKeyInfo(BaseModel):
    id: str
    user_id: str
    tier: str
    role: Role
    created_at: float
    revoked: bool = False


class CreatedKey(ApiKeyInfo):
    key: str = Field(description="The secret; shown only in this response.")
