"""The capability gate: which tools a caller's tier may offer the model, and which tool calls may reach it.

A tier lists its allowed tools as exact names or shell-style patterns, each with a risk level
(`TierConfig.tools`); anything not listed is refused. High-risk tools exist only in trusted tiers (the config
refuses anything else at start-up), and a request that offers one is screened on the strict policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from serve_app.config import Risk, TierConfig

_RANK = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class ToolCheck:
    forbidden: tuple[str, ...]
    highest_risk: Risk | None

    @property
    def needs_strict_policy(self) -> bool:
        return self.highest_risk == "high"


def tool_risk(tier: TierConfig, name: str) -> Risk | None:
    """The risk of `name` under the tier's rules (the highest of the rules that match), None if not allowed."""
    risks = [rule.risk for rule in tier.tools if fnmatchcase(name, rule.pattern)]
    return max(risks, key=_RANK.__getitem__) if risks else None


def check_tools(tier: TierConfig, names: list[str]) -> ToolCheck:
    """The gate for the tools a request offers and, the same, for the tool calls a model emits."""
    risks = {name: tool_risk(tier, name) for name in names}
    allowed = [risk for risk in risks.values() if risk is not None]
    return ToolCheck(
        forbidden=tuple(name for name, risk in risks.items() if risk is None),
        highest_risk=max(allowed, key=_RANK.__getitem__) if allowed else None,
    )
