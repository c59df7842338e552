"""A scripted safety LLM (Llama Guard 3, ShieldGemma) behind a real OpenAI-compatible HTTP server on loopback,
for the tests of the Moderator's `chat_judge` member and the IntentClassifier's review-band judge."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request

from harness.processes import ThreadedServer, free_port

STALL = "<stall>"


class ScriptedJudge:
    """A real OpenAI-compatible server on loopback playing a safety LLM: the last message's words pick the
    answer (`hateful` -> unsafe S10, `slowly` -> a stall past any timeout, `garbled` -> neither format).
    `replies` scripts more Llama Guard answers: a message containing a key gets its value (STALL: a stall)."""

    def __init__(self, replies: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.requests: list[dict] = []
        self.replies = dict(replies or {})
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> dict:
            body = await request.json()
            self.requests.append(body)
            last = body["messages"][-1]["content"]
            scripted = next((reply for key, reply in self.replies.items() if key in last), None)
            if scripted == STALL:
                await asyncio.sleep(3)
            if scripted is not None:
                return _choice(scripted)
            if "slowly" in last:
                await asyncio.sleep(3)
            if "Human Question" in last:  # ShieldGemma's template
                yes = "hateful" in last.split("Our safety principle")[0] and "Hate Speech" in last
                content, logprob = ("Yes", -0.05) if yes else ("No", -0.05)
                other = "No" if yes else "Yes"
                top = [{"token": content, "logprob": logprob}, {"token": other, "logprob": -3.0}]
                return _choice(content, {"content": [{"token": content, "logprob": logprob, "top_logprobs": top}]})
            content = "unsafe\nS10" if "hateful" in last else "I cannot say" if "garbled" in last else "safe"
            return _choice(content)

        self.served = ThreadedServer(app, self.port, "the scripted judge")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ScriptedJudge:
        self.served.start()
        return self

    def __exit__(self, *_) -> None:
        self.served.stop(5)


def _choice(content: str, logprobs: dict | None = None) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": logprobs}]}
