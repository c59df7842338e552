"""One chat request's state from admission to its last byte: who asked (context), what was admitted (access),
what was asked (the body, sampling parameters, the request's text for the Moderator and the records) and what
the input screen said. The answering code reads it, and settles its tokens through it, once."""

from __future__ import annotations

from dataclasses import dataclass, field

from classifiers.verdict import Verdict
from deployments.generation import SamplingParams
from serve_app.access import Access, settle
from serve_app.deps import RequestContext
from serve_app.gateway import Gateway
from serve_app.schemas.chat import ChatCompletionRequest


@dataclass
class ChatTurn:
    gateway: Gateway
    ctx: RequestContext
    access: Access
    body: ChatCompletionRequest
    params: SamplingParams
    request_text: str
    input_verdict: Verdict | None = None
    settled: bool = field(default=False, init=False)

    async def settle(self, used_tokens: int) -> None:
        """Give back the reserved tokens not used. Only the first call counts: whichever way the request ends
        (refused, failed, answered, streamed to the end or left), its tokens are settled exactly once."""
        if self.settled:
            return
        self.settled = True
        await settle(self.gateway, self.ctx, self.access, used_tokens)
