"""POST /beta/litellm_basic_guardrail_api: SafeServe's input and output stacks as a LiteLLM guardrail
(LiteLLM's Generic Guardrail API; serve_app/guardrail.py, docs/litellm.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serve_app import guardrail
from serve_app.deps import GatewayDep, GuardrailKey, RequestContext, TimerDep
from serve_app.errors import InvalidRequest, PermissionDenied, RateLimited
from serve_app.schemas.guardrail import GuardrailRequest, GuardrailResponse

GUARDRAIL_PATH = "/beta/litellm_basic_guardrail_api"
router = APIRouter(tags=["guardrails"])


@router.post(GUARDRAIL_PATH, response_model=GuardrailResponse, response_model_exclude_none=True)
async def litellm_guardrail(
    body: GuardrailRequest,
    request: Request,
    response: Response,
    gateway: GatewayDep,
    key: GuardrailKey,
    timer: TimerDep,
) -> GuardrailResponse:
    """A refusal is an answer here (HTTP 200, `BLOCKED`, which LiteLLM turns into a 400 for its client), not an
    error: LiteLLM reads any error status as a guardrail failure. Infrastructure faults stay 503s, which LiteLLM
    treats as the guardrail unreachable (fail_closed by default)."""
    acting = guardrail.acting_for(key, body.request_data.user_api_key_user_id)
    request.state.key = acting  # for the request's log line
    ctx = RequestContext(
        request_id=request.state.request_id, route=GUARDRAIL_PATH, key=acting, timer=timer, state=request.state
    )
    try:
        if body.input_type == "request":
            answer = await guardrail.check_request(gateway, ctx, body)
        else:
            answer = await guardrail.check_response(gateway, ctx, body)
    except (InvalidRequest, PermissionDenied, RateLimited) as exc:  # a policy's refusal, input blocks included
        answer = guardrail.blocked(exc.message)
    response.headers["Server-Timing"] = timer.header()
    return answer
