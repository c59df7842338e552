"""`/v1/models`, in the OpenAI format."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "safeserve"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
