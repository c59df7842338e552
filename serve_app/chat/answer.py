"""A chat request from its checks to its answer, the one call the router makes: refuse what this gateway cannot
serve, admit (suspension, tools, limits), screen the input, then answer whole or as a moderated stream."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import StreamingResponse

from serve_app.access import admit
from serve_app.chat import translate
from serve_app.chat.complete import complete
from serve_app.chat.records import withholds_answer
from serve_app.chat.safety import screen_input
from serve_app.chat.stream import stream_completion, stream_whole
from serve_app.chat.turn import ChatTurn
from serve_app.deps import RequestContext
from serve_app.errors import InvalidRequest, ModelNotFound, SafeServeError, ServiceUnavailable
from serve_app.gateway import Gateway
from serve_app.schemas.chat import ChatCompletion, ChatCompletionRequest


def refuse_unservable(
    gateway: Gateway, ctx: RequestContext, body: ChatCompletionRequest, prompt_texts: list[str]
) -> None:
    """Refuse, before anything is reserved, what no policy decision is needed for: generation stopped by the
    kill switch (503), another model (404), too many messages or characters (400)."""
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
    prompt_chars = sum(len(text) for text in prompt_texts)
    if prompt_chars > config.max_prompt_chars:
        raise InvalidRequest(
            f"The prompt has {prompt_chars} characters; the limit is {config.max_prompt_chars}.",
            param="messages",
            code="context_length_exceeded",
        )


async def admitted_turn(
    gateway: Gateway, ctx: RequestContext, body: ChatCompletionRequest, prompt_texts: list[str]
) -> ChatTurn:
    """Admit the request and screen its input; a refusal raises, with the reserved tokens given back."""
    params = translate.sampling_params(gateway, ctx, body)
    with ctx.timer.stage("limits"):
        access = await admit(gateway, ctx, prompt_texts, params.max_tokens, body.tool_names())
    turn_views = translate.untrusted_views(body)
    turn = ChatTurn(gateway, ctx, access, body, params, translate.request_text(turn_views))
    try:
        turn.input_verdict = await screen_input(gateway, ctx, access, turn_views)
    except SafeServeError as exc:
        await turn.settle(0)  # nothing was generated
        exc.headers = {**access.headers(), **(exc.headers or {})}
        raise
    return turn


async def answer(
    gateway: Gateway, ctx: RequestContext, body: ChatCompletionRequest, response: Response
) -> ChatCompletion | StreamingResponse:
    prompt_texts = body.prompt_texts()  # the size limit and the token admission count the same texts
    refuse_unservable(gateway, ctx, body, prompt_texts)
    turn = await admitted_turn(gateway, ctx, body, prompt_texts)
    if body.stream:
        # An answer that will be withheld whatever it says is generated whole; only the notice is streamed.
        withheld = withholds_answer(gateway, turn.input_verdict)
        events = stream_whole(await complete(turn)) if withheld else stream_completion(turn)
        headers = {"Server-Timing": ctx.timer.header(), "Cache-Control": "no-cache", **turn.access.headers()}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    completion = await complete(turn)
    response.headers["Server-Timing"] = ctx.timer.header()
    response.headers.update(turn.access.headers())
    return completion
