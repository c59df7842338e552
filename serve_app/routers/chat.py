"""POST /v1/chat/completions: the guarded model, OpenAI-compatible, with or without streaming."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from serve_app.access import admit, settle
from serve_app.chat import translate
from serve_app.chat.complete import complete
from serve_app.chat.records import withholds_answer
from serve_app.chat.safety import screen_input
from serve_app.chat.stream import stream_completion, stream_whole
from serve_app.deps import Context, GatewayDep
from serve_app.errors import InvalidRequest, ModelNotFound, SafeServeError, ServiceUnavailable
from serve_app.schemas.chat import ChatCompletion, ChatCompletionRequest

router = APIRouter(prefix="/v1", tags=["chat"])


@router.post("/chat/completions", response_model=ChatCompletion)
async def create_chat_completion(
    body: ChatCompletionRequest, gateway: GatewayDep, ctx: Context, response: Response
) -> ChatCompletion | StreamingResponse:
    config = gateway.config
    if config.stop_generation:
        ctx.state.decision = "generation_stopped"
        raise ServiceUnavailable(config.stop_generation_message, code="generation_stopped")
    if body.model != config.served_model:
        raise ModelNotFound(
            f"The model '{body.model}' does not exist; this gateway serves '{config.served_model}'.", param="model"
        )
    if len(body.messages) > config.max_messages:
        raise InvalidRequest(
            f"At most {config.max_messages} messages are accepted.", param="messages", code="too_many_messages"
        )
    prompt_texts = body.prompt_texts()
    prompt_chars = sum(len(text) for text in prompt_texts)
    if prompt_chars > config.max_prompt_chars:
        raise InvalidRequest(
            f"The prompt has {prompt_chars} characters; the limit is {config.max_prompt_chars}.",
            param="messages",
            code="context_length_exceeded",
        )
    params = translate.sampling_params(gateway, ctx, body)
    with ctx.timer.stage("limits"):
        access = await admit(gateway, ctx, prompt_texts, params.max_tokens, body.tool_names())
    turn_views = translate.untrusted_views(body)
    try:
        input_verdict = await screen_input(gateway, ctx, access, turn_views)
    except SafeServeError as exc:
        await settle(gateway, ctx, access, 0)  # nothing was generated: give the reserved tokens back
        exc.headers = {**access.headers(), **(exc.headers or {})}
        raise
    request_text = translate.request_text(turn_views)
    if body.stream and withholds_answer(gateway, input_verdict):
        # The answer will be withheld whatever it says: generate it whole, then stream only the notice.
        completion = await complete(gateway, ctx, access, body, params, request_text, input_verdict)
        return StreamingResponse(
            stream_whole(completion),
            media_type="text/event-stream",
            headers={"Server-Timing": ctx.timer.header(), "Cache-Control": "no-cache", **access.headers()},
        )
    if body.stream:
        return StreamingResponse(
            stream_completion(gateway, ctx, access, body, params, request_text),
            media_type="text/event-stream",
            headers={"Server-Timing": ctx.timer.header(), "Cache-Control": "no-cache", **access.headers()},
        )
    completion = await complete(gateway, ctx, access, body, params, request_text, input_verdict)
    response.headers["Server-Timing"] = ctx.timer.header()
    response.headers.update(access.headers())
    return completion
