"""POST /v1/moderations: the output moderation stack on caller-given text, in the OpenAI format."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from classifiers.taxonomy import OPENAI_MODERATION, OPENAI_MODERATION_CATEGORIES, openai_scores
from classifiers.verdict import Action
from serve_app.access import admit
from serve_app.chat.safety import moderate_many
from serve_app.deps import Context, GatewayDep
from serve_app.errors import InvalidRequest
from serve_app.schemas.moderation import ModerationRequest, ModerationResponse, ModerationResult

router = APIRouter(prefix="/v1", tags=["moderations"])
MODEL_NAME = "safeserve-moderator"
MAX_INPUTS = 32


@router.post("/moderations", response_model=ModerationResponse)
async def create_moderation(
    body: ModerationRequest, gateway: GatewayDep, ctx: Context, response: Response
) -> ModerationResponse:
    texts = body.texts()
    if len(texts) > MAX_INPUTS:
        raise InvalidRequest(f"At most {MAX_INPUTS} inputs per request.", param="input")
    too_long = next((i for i, t in enumerate(texts) if len(t) > gateway.config.max_prompt_chars), None)
    if too_long is not None:
        raise InvalidRequest(
            f"Input {too_long} exceeds {gateway.config.max_prompt_chars} characters.",
            param="input",
            code="context_length_exceeded",
        )
    with ctx.timer.stage("limits"):
        access = await admit(gateway, ctx, texts, max_tokens=0)
    response.headers.update(access.headers())
    verdicts = await moderate_many(gateway, ctx, access, texts)
    results = []
    for verdict in verdicts:
        flagged_names = {name for category in verdict.flagged for name in OPENAI_MODERATION.get(category, ())}
        results.append(
            ModerationResult(
                flagged=verdict.action is not Action.ALLOW,
                categories={name: name in flagged_names for name in OPENAI_MODERATION_CATEGORIES},
                category_scores=openai_scores(verdict.scores),
                safeserve_action=verdict.action,
                safeserve_categories={str(c): round(s, 4) for c, s in verdict.scores.items()},
                safeserve_redactions=list(dict.fromkeys(r.kind for r in verdict.redactions)),
            )
        )
    response.headers["Server-Timing"] = ctx.timer.header()
    return ModerationResponse(id=f"modr-{uuid.uuid4().hex}", model=body.model or MODEL_NAME, results=results)
