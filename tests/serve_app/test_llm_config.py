"""The `llm` section (a Ray Serve LLM config for backend vllm): `safeserve config check` validates it without vLLM,
names a bad field, and refuses a backend and section that do not go together; the builder turns it into an
LLMServer deployment bound to the Generator (with vLLM installed; without it, it says what to install)."""

from __future__ import annotations

import copy
import importlib.util
from typing import Any

import pytest

from harness.processes import ROOT
from serve_app.builder import build_app
from serve_app.serve_config import ConfigError, app_config, check_file, load_serve_config

PRODUCTION = load_serve_config(ROOT / "configs" / "production.yaml")
LLM = PRODUCTION["applications"][0]["args"]["llm"]
HAS_VLLM = importlib.util.find_spec("vllm") is not None


def production(llm: dict[str, Any] | None, backend: str = "vllm") -> dict[str, Any]:
    config = copy.deepcopy(PRODUCTION)
    app = config["applications"][0]
    app["args"] = {} if llm is None else {"llm": llm}
    next(d for d in app["deployments"] if d["name"] == "Generator")["user_config"]["backend"] = backend
    return config


def test_production_names_its_weights_and_passes() -> None:
    config = check_file(ROOT / "configs" / "production.yaml")
    assert config.generator.backend == "vllm"
    assert config.llm["model_loading_config"]["model_id"] == "safeserve-smollm2"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_loading_config": None}, r"(?s)llm\n.*model_loading_config: Field required"),
        ({"model_loading_config": {"model_id": "m"}}, "model_source is required"),
        ({"model_loading_config": {"model_id": "m", "model_source": "HuggingFaceTB/SmolLM2"}}, "absolute path"),
        ({"accelerator_type": "H9000"}, "accelerator_type: Value error, Unsupported accelerator type: H9000"),
        ({"deployment_config": {"autoscaling_config": {"min_replicas": "one"}}}, "deployment_config"),
        ({"engine": "vllm"}, "engine: Extra inputs are not permitted"),
    ],
)
def test_a_bad_llm_section_fails_the_check_and_names_the_field(change: dict, message: str) -> None:
    llm = {key: value for key, value in {**LLM, **change}.items() if value is not None}
    with pytest.raises(ConfigError, match=message):
        app_config(production(llm))


def test_a_backend_and_an_llm_section_go_together() -> None:
    with pytest.raises(ConfigError, match="backend vllm needs `llm`"):
        app_config(production(None))
    # An LLMServer nobody calls would hold its GPUs for nothing.
    with pytest.raises(ConfigError, match="the Generator's is transformers: remove `llm`"):
        app_config(production(LLM, backend="transformers"))
    assert app_config(production(None, backend="transformers")).llm is None


def test_the_llm_server_is_configured_in_the_args_not_in_deployments() -> None:
    config = production(LLM)
    config["applications"][0]["deployments"].append({"name": "LLMServer", "num_replicas": 2})
    with pytest.raises(ConfigError, match="LLMServer takes its options from the args' `llm`"):
        app_config(config)


def test_without_llm_the_graph_is_as_before() -> None:
    app = build_app({})
    generator = app._bound_deployment.init_args[1]
    assert generator._bound_deployment.name == "Generator"
    assert generator._bound_deployment.init_args[1:] == (None, None)


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_building_llm_without_vllm_says_what_to_install() -> None:
    with pytest.raises(RuntimeError, match="install SafeServe with its `vllm` extra"):
        build_app({"llm": LLM})


@pytest.mark.skipif(not HAS_VLLM, reason="Ray's LLMServer needs vLLM to size its placement group")
def test_the_llm_server_is_built_from_the_section_and_bound_to_the_generator() -> None:
    section = {**LLM, "engine_kwargs": {**LLM["engine_kwargs"], "tensor_parallel_size": 2}, "accelerator_type": "L4"}
    app = build_app({"llm": section})
    generator = app._bound_deployment.init_args[1]._bound_deployment
    llm, bound_section = generator.init_args[1], generator.init_args[2]
    assert bound_section == section
    server = llm._bound_deployment
    assert server.name == "LLMServer" and server.func_or_class.__name__ == "GeneratorLLMServer"
    assert server._deployment_config.autoscaling_config.max_replicas == 4
    gpus = [bundle.get("GPU", 0) for bundle in server._replica_config.placement_group_bundles]
    assert sum(gpus) == 2  # one GPU per tensor-parallel rank
    assert all("accelerator_type:L4" in bundle for bundle in server._replica_config.placement_group_bundles)
