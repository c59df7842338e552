"""The shipped Serve configs validate, and a bad one fails with a message that names the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deployments.config import GeneratorOverrides
from harness.processes import ROOT
from serve_app.cli import main
from serve_app.serve_config import ConfigError, app_config, check_file, load_serve_config


@pytest.mark.parametrize("name", ["local.yaml", "production.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    config = check_file(ROOT / "configs" / name)
    assert set(config.ingress.tiers) >= {"free", "standard", "trusted"}
    assert config.ingress.input_patterns and config.moderator.denylist
    assert config.moderator.lexicon.severe == "block"
    # The output policy's plain-phrase block rules are banned from decoding; regex and review rules are not.
    assert config.moderator.decoding_bans() == ("DAN mode enabled", "developer mode enabled")


def test_local_config_binds_to_loopback() -> None:
    assert load_serve_config(ROOT / "configs" / "local.yaml")["http_options"]["host"] == "127.0.0.1"


def test_production_generates_on_vllm_and_only_the_llm_server_holds_a_gpu() -> None:
    app = load_serve_config(ROOT / "configs" / "production.yaml")["applications"][0]
    generator = next(d for d in app["deployments"] if d["name"] == "Generator")
    assert generator["user_config"]["backend"] == "vllm" and not generator["ray_actor_options"].get("num_gpus")
    assert generator["autoscaling_config"]["max_replicas"] > generator["autoscaling_config"]["min_replicas"]
    llm = app["args"]["llm"]
    assert llm["model_loading_config"]["model_source"].startswith("/opt/safeserve/models/")  # the image's models
    autoscaling = llm["deployment_config"]["autoscaling_config"]
    assert autoscaling["max_replicas"] > autoscaling["min_replicas"] >= 1


@pytest.mark.parametrize(
    ("deployment", "user_config", "message"),
    [
        ("Ingress", {"tiers": {}}, "ingress.tiers"),
        ("Ingress", {"max_prompt_chars": 0}, "ingress.max_prompt_chars"),
        ("Ingress", {"input_patterns": [{"pattern": "(", "category": "fraud"}]}, "invalid regular expression"),
        ("Moderator", {"thresholds": {"categories": {"nonsense": {"review": 0.1}}}}, "moderator.thresholds.categories"),
        ("Moderator", {"lexicon": {"medium": "redact"}}, "moderator.lexicon.medium"),
        ("Moderator", {"lexicon": {"unlocated": "redact"}}, "must be review or block"),
        ("Moderator", {"detoxify": {"checkpoint": "x.ckpt"}}, "moderator.detoxify"),
        ("Moderator", {"toxicity": {"band": [0.9, 0.1]}}, "low < high"),
        ("Moderator", {"members": [{"kind": "perspective"}]}, "moderator.members.0"),
        (
            "Moderator",
            {"members": [{"kind": "hf_classifier", "path": "x"}]},
            "moderator.members.0.hf_classifier.labels",
        ),
        (
            "Moderator",
            {"members": [{"kind": "hf_classifier", "path": "x", "labels": {"toxic": "rudeness"}}]},
            "moderator.members.0.hf_classifier.labels.toxic",
        ),
        (
            "Moderator",
            {
                "members": [
                    {
                        "kind": "chat_judge",
                        "url": "http://h:1/v1",
                        "model": "m",
                        "format": "llama_guard_3",
                        "stage": "all",
                    }
                ]
            },
            "reads only the band",
        ),
        (
            "Moderator",
            {"members": [{"kind": "chat_judge", "url": "http://h:1/v1", "model": "m", "format": "gpt4"}]},
            "moderator.members.0.chat_judge.format",
        ),
        (
            "Moderator",
            {
                "members": [
                    {"kind": "onnx_classifier", "path": "a", "labels": {}},
                    {"kind": "onnx_classifier", "path": "b", "labels": {}},
                ]
            },
            "distinct names",
        ),
        ("Ingress", {"reputation": {"penalties": {"blocked": 3}}}, "ingress.reputation.penalties.blocked"),
        ("Generator", {"device": "tpu"}, "generator.device"),
        ("ReviewQueue", {"sla_seconds": -1}, "review_queue.sla_seconds"),
        ("IntentClassifier", {"unknown_field": 1}, "intent_classifier.unknown_field"),
        (
            "IntentClassifier",
            {"judge": {"url": "http://h:1/v1", "model": "m", "format": "llama_guard_3", "on_unsafe": "refuse"}},
            "intent_classifier.judge.on_unsafe",
        ),
        (
            "IntentClassifier",
            {"judge": {"url": "h:1", "model": "m", "format": "shieldgemma"}},
            "intent_classifier.judge.url",
        ),
    ],
)
def test_bad_config_names_the_field(deployment: str, user_config: dict, message: str) -> None:
    config = {
        "applications": [
            {
                "name": "safeserve",
                "import_path": "serve_app.builder:build_app",
                "deployments": [{"name": deployment, "user_config": user_config}],
            }
        ]
    }
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        app_config(config)


def test_unknown_deployment_and_missing_app_are_reported() -> None:
    with pytest.raises(ConfigError, match="unknown deployment 'Gen'"):
        app_config({"applications": [{"name": "safeserve", "deployments": [{"name": "Gen"}]}]})
    with pytest.raises(ConfigError, match="no application named 'safeserve'"):
        app_config({"applications": []})


def test_cli_config_check(tmp_path, capsys) -> None:
    assert main(["config", "check", str(ROOT / "configs" / "local.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "applications:\n  - name: safeserve\n    deployments:\n"
        "      - name: Ingress\n        user_config: {tiers: {}}\n"
    )
    assert main(["config", "check", str(bad)]) == 2
    assert "ingress.tiers" in capsys.readouterr().err


def test_the_embed_band_must_be_ordered() -> None:
    from deployments.config import IntentModelConfig

    assert IntentModelConfig(embed_band=[0, 1]).embed_band == (0.0, 1.0)
    with pytest.raises(ValidationError, match="low < high"):
        IntentModelConfig(embed_band=[0.9, 0.1])
    with pytest.raises(ValidationError):
        IntentModelConfig(embed_band=[-0.1, 0.5])


def test_the_answer_check_keeps_its_own_band() -> None:
    """The input band was chosen out of fold on requests; answers keep the band they were measured with."""
    from classifiers.answer_intent import ANSWER_EMBED_BAND
    from classifiers.intent_model import DEFAULT_EMBED_BAND
    from deployments.config import AnswerIntentConfig, IntentClassifierConfig, ModeratorConfig

    assert ANSWER_EMBED_BAND != DEFAULT_EMBED_BAND
    assert IntentClassifierConfig().embed_band == DEFAULT_EMBED_BAND
    assert ModeratorConfig().answer_intent.embed_band == ANSWER_EMBED_BAND
    with pytest.raises(ValidationError, match="low < high"):
        AnswerIntentConfig(embed_band=[0.9, 0.1])
    for name in ("local.yaml", "production.yaml"):
        config = check_file(ROOT / "configs" / name)
        assert config.intent_classifier.embed_band == DEFAULT_EMBED_BAND
        assert config.moderator.answer_intent.embed_band == ANSWER_EMBED_BAND


def test_an_empty_admin_key_means_unset_and_a_short_one_is_refused(monkeypatch) -> None:
    from serve_app.config import Settings

    monkeypatch.setenv("SAFESERVE_ADMIN_KEY", "")
    assert Settings().admin_key is None
    monkeypatch.setenv("SAFESERVE_ADMIN_KEY", "hunter2")
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings()


def test_the_environment_switches_the_generator_to_an_upstream(monkeypatch) -> None:
    monkeypatch.setenv("SAFESERVE_GENERATOR_BACKEND", "openai_upstream")
    monkeypatch.setenv("SAFESERVE_UPSTREAM_URL", "http://127.0.0.1:8001/v1")
    monkeypatch.setenv("SAFESERVE_UPSTREAM_MODEL", "my-model")
    generator = check_file(ROOT / "configs" / "local.yaml").generator
    assert generator.backend == "openai_upstream"
    assert (generator.upstream.url, generator.upstream.model) == ("http://127.0.0.1:8001/v1", "my-model")
    # The rest of the file's Generator config stands (what the Generator's own reconfigure applies too).
    user_config = load_serve_config(ROOT / "configs" / "local.yaml")["applications"][0]["deployments"][2]
    assert GeneratorOverrides().apply(user_config["user_config"]) == generator
    assert generator.steering.system_prompt and generator.upstream.timeout_s == 120


def test_an_override_keeps_what_the_environment_leaves_unset(monkeypatch) -> None:
    monkeypatch.setenv("SAFESERVE_UPSTREAM_MODEL", "other-model")
    upstream = {"url": "http://10.0.0.5:8000/v1", "model": "file-model", "max_retries": 5}
    generator = GeneratorOverrides().apply({"backend": "openai_upstream", "upstream": upstream})
    assert (generator.upstream.url, generator.upstream.model, generator.upstream.max_retries) == (
        "http://10.0.0.5:8000/v1",
        "other-model",
        5,
    )


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SAFESERVE_GENERATOR_BACKEND": "openai_upstream"}, "SAFESERVE_UPSTREAM_URL and SAFESERVE_UPSTREAM_MODEL"),
        ({"SAFESERVE_GENERATOR_BACKEND": "llama"}, "generator_backend"),
        ({"SAFESERVE_GENERATOR_BACKEND": "vllm"}, "backend vllm needs `llm` in the application's args"),
        (
            {"SAFESERVE_GENERATOR_BACKEND": "openai_upstream", "SAFESERVE_UPSTREAM_URL": "http://127.0.0.1:8001"},
            "generator.upstream",
        ),
    ],
)
def test_a_bad_override_fails_the_config_check(monkeypatch, environment: dict, message: str) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises((ConfigError, ValidationError), match=message):
        check_file(ROOT / "configs" / "local.yaml")
