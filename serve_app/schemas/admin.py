"""Admin API bodies: API keys and review decisions."""

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


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "safeserve"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
