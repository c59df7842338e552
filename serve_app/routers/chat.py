"""POST /v1/chat/completions: the guarded model, OpenAI-compatible, with or without streaming."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from serve_app.chat.answer import answer
from serve_app.deps import Context, GatewayDep
from serve_app.schemas.chat import ChatCompletion, ChatCompletionRequest

router = APIRouter(prefix="/v1", tags=["chat"])


@router.post("/chat/completions", response_model=ChatCompletion)
async def create_chat_completion(
    body: ChatCompletionRequest, gateway: GatewayDep, ctx: Context, response: Response
) -> ChatCompletion | StreamingResponse:
    return await answer(gateway, ctx, body, response)
