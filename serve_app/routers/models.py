"""GET /v1/models: the one guarded model this gateway serves."""

from __future__ import annotations

from fastapi import APIRouter

from serve_app.deps import CurrentKey, GatewayDep
from serve_app.schemas.models import ModelCard, ModelList

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelList)
async def list_models(gateway: GatewayDep, _: CurrentKey) -> ModelList:
    return ModelList(data=[ModelCard(id=gateway.config.served_model, created=gateway.started_at)])
