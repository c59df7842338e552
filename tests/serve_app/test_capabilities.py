"""The capability gate: tools by name or pattern, risk levels, and the config rules around them."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from harness.processes import ROOT
from serve_app.capabilities import check_tools, tool_risk
from serve_app.config import IngressConfig, TierConfig, ToolRule
from serve_app.serve_config import check_file

TIER = TierConfig(
    trusted=True,
    tools=(
        ToolRule(pattern="get_weather"),
        ToolRule(pattern="search_*", risk="medium"),
        ToolRule(pattern="run_code", risk="high"),
    ),
)


def test_names_and_patterns_give_the_risk() -> None:
    assert tool_risk(TIER, "get_weather") == "low"
    assert tool_risk(TIER, "search_web") == "medium"
    assert tool_risk(TIER, "run_code") == "high"
    assert tool_risk(TIER, "search") is None  # the pattern needs the underscore
    assert tool_risk(TIER, "GET_WEATHER") is None  # names are case-sensitive, as function names are


def test_any_tool_not_listed_is_forbidden() -> None:
    check = check_tools(TIER, ["get_weather", "delete_files", "search_web"])
    assert check.forbidden == ("delete_files",)
    assert check.highest_risk == "medium" and not check.needs_strict_policy
    assert check_tools(TIER, ["get_weather", "run_code"]).needs_strict_policy


def test_a_tier_without_tools_allows_none() -> None:
    assert check_tools(TierConfig(), ["get_weather"]).forbidden == ("get_weather",)


def test_high_risk_tools_need_a_trusted_tier() -> None:
    with pytest.raises(ValidationError, match="trusted: true"):
        TierConfig(tools=(ToolRule(pattern="run_code", risk="high"),))


@pytest.mark.parametrize("name", ["local.yaml", "production.yaml"])
def test_the_shipped_free_tier_allows_no_tool(name: str) -> None:
    ingress = check_file(ROOT / "configs" / name).ingress
    assert isinstance(ingress, IngressConfig)
    assert ingress.tiers["free"].tools == ()
    assert all(rule.risk != "high" for tier in ingress.tiers.values() if not tier.trusted for rule in tier.tools)


def test_tool_calls_the_model_emits_pass_the_same_gate() -> None:
    from classifiers.taxonomy import Category
    from classifiers.verdict import Action, Redaction, Verdict
    from deployments.generation import ToolCall
    from serve_app.access import Access
    from serve_app.chat.safety import gate_tool_calls
    from serve_app.config import Limits

    access = Access(
        tier=TierConfig(tools=(ToolRule(pattern="get_weather"),)),
        limits=Limits(),
        strict=False,
        admission=None,
        prompt_tokens=0,
    )

    def calls(*names: str) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(id=f"call_{i}", name=name, arguments="{}") for i, name in enumerate(names))

    redacted = Verdict(layer="moderator", redactions=(Redaction("email", Category.PRIVACY, 0, 5, "[email]"),))
    assert gate_tool_calls(access, calls(), redacted) == redacted  # the Moderator's verdict stands whole
    assert gate_tool_calls(access, calls("get_weather"), redacted) == redacted
    blocked = gate_tool_calls(access, calls("get_weather", "delete_files"), redacted)
    assert blocked.action is Action.BLOCK and blocked.layer == "capability_gate"
    assert blocked.reasons == ("tool_call_not_allowed:delete_files",)


def test_a_tool_calls_arguments_are_redacted_in_place_and_still_parse() -> None:
    from classifiers.sensitive_data import SensitiveDataPolicy
    from classifiers.verdict import Action
    from deployments.generation import ToolCall
    from serve_app.chat.safety import redact_tool_call

    call = ToolCall(id="call_1", name="send_note", arguments='{"to": "ada.lovelace@example.org", "body": "hi"}')
    found = SensitiveDataPolicy().check(call.arguments, layer="moderator")
    delivered, verdict = redact_tool_call(call, found)
    assert json.loads(delivered.arguments) == {"to": "[email]", "body": "hi"}
    assert verdict.action is Action.ALLOW and verdict.redactions == ()  # they belong to the arguments, not the answer
    assert (delivered.id, delivered.name) == (call.id, call.name)

    secret = ToolCall(id="call_2", name="send_note", arguments='{"key": "AKIAIOSFODNN7EXAMPLE"}')
    kept, blocked = redact_tool_call(secret, SensitiveDataPolicy().check(secret.arguments, layer="moderator"))
    assert blocked.action is Action.BLOCK and kept == secret  # never delivered, so nothing to redact
    assert blocked.reasons and all(reason.startswith("tool_call:send_note:") for reason in blocked.reasons)


def test_a_redaction_that_would_break_a_calls_json_blocks_it() -> None:
    from classifiers.taxonomy import Category
    from classifiers.verdict import Action, Redaction, Verdict
    from deployments.generation import ToolCall
    from serve_app.chat.safety import redact_tool_call

    call = ToolCall(id="call_1", name="send_note", arguments='{"to": "x"}')
    across_a_quote = Verdict(layer="moderator", redactions=(Redaction("email", Category.PRIVACY, 7, 11, "[email]"),))
    _, verdict = redact_tool_call(call, across_a_quote)
    assert verdict.action is Action.BLOCK and verdict.reasons == ("tool_call:send_note:redaction_broke_arguments",)
