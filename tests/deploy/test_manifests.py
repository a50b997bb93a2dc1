"""deploy/kubernetes: every overlay builds, passes an offline schema check, and agrees with the
code: env names are settings, probe paths are routes, ports are the settings' ports, commands
are the CLI's; the KEDA and Prometheus Operator objects (no schema offline) are checked here."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from app.api.exposition import QueueGauges, QueueReading
from app.cli import _parser
from app.settings import Settings
from app.worker.metrics import configured_port
from tests.deploy.conftest import KUBERNETES, OVERLAYS, load_yaml
from tests.helpers import ROOT, live_api

Doc = dict[str, Any]
CRDS = {"ScaledObject", "ServiceMonitor"}  # no schema in kubernetes-validate
# The oldest Kubernetes the schema check knows, and the newest.
SCHEMA_VERSIONS = ("1.25.0", latest_version())
KINDS = {
    "ConfigMap",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Job",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "ScaledObject",
    "Service",
    "ServiceMonitor",
}
# HANMO_* variables that are not fields of app.settings.Settings: the file that reads each
NOT_SETTINGS = {
    "HANMO_LOG_LEVEL": "app/logs.py",
}
SECRET_EXAMPLE = KUBERNETES / "base" / "secret.example.yaml"


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} in the build"
    return found[0]


def containers(doc: Doc) -> Iterator[Doc]:
    spec = doc["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def workloads(docs: list[Doc]) -> Iterator[Doc]:
    return (d for d in docs if d["kind"] in ("Deployment", "Job"))


def container_env(docs: list[Doc], container: Doc) -> dict[str, str | None]:
    """What the container's environment holds: its ConfigMaps' data, then its own `env`
    (None for a value from a Secret)."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        config = source["configMapRef"]["name"]
        env.update(one(docs, "ConfigMap", config)["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value")
    return env


def settings_for(env: dict[str, str | None]) -> Settings:
    """The Settings those values make (each one validated as the process would read it)."""
    fields = {
        name.removeprefix("HANMO_").lower(): value
        for name, value in env.items()
        if value is not None and name not in NOT_SETTINGS
    }
    return Settings(**fields)


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_builds_with_kubectl_kustomize(
    built: dict[str, list[Doc]], overlay: str
) -> None:
    docs = built[overlay]
    assert {d["kind"] for d in docs} == KINDS
    assert all("namespace" not in d["metadata"] for d in docs), "the base is namespace-agnostic"
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "hanmo" for d in docs)


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_built_objects_pass_the_offline_schema_check(
    built: dict[str, list[Doc]], overlay: str, version: str
) -> None:
    checked = []
    for doc in built[overlay]:
        if doc["kind"] in CRDS:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked.append(doc["kind"])
    assert len(checked) == len(built[overlay]) - 3  # all but one ScaledObject, 2 ServiceMonitors


def test_schema_check_refuses_a_misspelt_field(built: dict[str, list[Doc]]) -> None:
    """The check is strict: a field Kubernetes would drop without a word fails it."""
    api = copy.deepcopy(one(built["cpu"], "Deployment", "hanmo-api"))
    probe = api["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    api["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = probe
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(api, latest_version(), strict=True)


def test_secret_example_is_valid_and_holds_every_key_the_pods_read(
    built: dict[str, list[Doc]],
) -> None:
    (secret,) = load_yaml(SECRET_EXAMPLE)
    kubernetes_validate.validate(secret, latest_version(), strict=True)
    read = {
        (item["valueFrom"]["secretKeyRef"]["name"], item["valueFrom"]["secretKeyRef"]["key"])
        for docs in built.values()
        for doc in workloads(docs)
        for container in containers(doc)
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert read == {("hanmo", "HANMO_DATABASE_URL"), ("hanmo", "HANMO_REDIS_URL")}
    assert {key for _, key in read} | {"admin-key"} == set(secret["stringData"])
    assert secret["metadata"]["name"] == "hanmo"
    kustomization = (KUBERNETES / "base" / "kustomization.yaml").read_text()
    assert "secret.example.yaml" not in re.sub(r"#.*", "", kustomization)  # never applied


def hanmo_env_names(built: dict[str, list[Doc]]) -> dict[str, str]:
    """Every HANMO_* name the deployment files set -> where."""
    found: dict[str, str] = {}
    for overlay, docs in built.items():
        for doc in docs:
            where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
            if doc["kind"] == "ConfigMap":
                found.update(dict.fromkeys(doc["data"], where))
            if doc["kind"] in ("Deployment", "Job"):
                for container in containers(doc):
                    found.update({item["name"]: where for item in container.get("env", [])})
    found.update(dict.fromkeys(load_yaml(SECRET_EXAMPLE)[0]["stringData"], "secret.example"))
    compose = load_yaml(ROOT / "docker-compose.yml")[0]
    for name, service in compose["services"].items():
        found.update(dict.fromkeys(service.get("environment", {}), f"docker-compose: {name}"))
    return {name: where for name, where in found.items() if name.startswith("HANMO_")}


def test_every_hanmo_variable_is_a_setting_or_a_documented_one(
    built: dict[str, list[Doc]],
) -> None:
    names = hanmo_env_names(built)
    assert len(names) >= 10
    unknown = {
        name: where
        for name, where in names.items()
        if name.removeprefix("HANMO_").lower() not in Settings.model_fields
        and name not in NOT_SETTINGS
    }
    assert not unknown, f"not settings of app/settings.py: {unknown}"
    for name, reader in NOT_SETTINGS.items():  # the documented ones are read where it says
        assert name in (ROOT / reader).read_text(), f"{reader} does not read {name}"


def test_every_container_environment_makes_valid_settings(built: dict[str, list[Doc]]) -> None:
    for docs in built.values():
        for doc in workloads(docs):
            for container in containers(doc):
                settings_for(container_env(docs, container))  # raises on a bad value


def test_probe_and_scrape_paths_answer_on_the_api(
    built: dict[str, list[Doc]], settings: Settings
) -> None:
    """Each path a probe or the ServiceMonitor asks for, asked of a live api (no model
    registered, so /readyz is ready)."""
    paths: set[str] = set()
    for docs in built.values():
        (container,) = containers(one(docs, "Deployment", "hanmo-api"))
        probes = ("startupProbe", "livenessProbe", "readinessProbe")
        assert [container[p]["httpGet"]["path"] for p in probes] == ["/livez", "/livez", "/readyz"]
        named = {port["name"] for port in container["ports"]}
        assert {container[p]["httpGet"]["port"] for p in probes} <= named
        paths |= {container[p]["httpGet"]["path"] for p in probes}
        monitor = one(docs, "ServiceMonitor", "hanmo-api")
        paths |= {endpoint["path"] for endpoint in monitor["spec"]["endpoints"]}
    with live_api(settings) as client:
        answers = {path: client.get(path).status_code for path in sorted(paths)}
        unknown = client.get("/healthz").status_code
    assert answers == {"/livez": 200, "/metrics": 200, "/readyz": 200}
    assert unknown == 404  # a path the api does not serve would fail the line above


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_container_ports_are_the_ports_the_processes_listen_on(
    built: dict[str, list[Doc]], overlay: str
) -> None:
    docs = built[overlay]
    api = one(docs, "Deployment", "hanmo-api")
    (container,) = containers(api)
    assert "--port" not in container.get("args", []) + container["command"]
    settings = settings_for(container_env(docs, container))
    assert settings.host == "0.0.0.0"  # reachable from outside the pod
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": settings.port}

    worker = one(docs, "Deployment", "hanmo-worker")
    (container,) = containers(worker)
    env = container_env(docs, container)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    port = configured_port(0, settings_for(env).worker_metrics_port)
    assert ports == {"metrics": port}  # one slot a pod: no --replicas
    assert "--replicas" not in container["command"] + container.get("args", [])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_route_to_named_ports_of_their_pods(
    built: dict[str, list[Doc]], overlay: str
) -> None:
    docs = built[overlay]
    for service in (d for d in docs if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        pods = [
            d
            for d in docs
            if d["kind"] == "Deployment"
            and labels_match(selector, d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(pods) == 1, service["metadata"]["name"]
        named = {p["name"] for c in containers(pods[0]) for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= named


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_commands_are_commands_of_the_hanmo_cli(built: dict[str, list[Doc]], overlay: str) -> None:
    run = set()
    for doc in workloads(built[overlay]):
        for container in containers(doc):
            argv = container["command"] + container.get("args", [])
            assert argv[0] == "hanmo", argv
            parsed = _parser().parse_args(argv[1:])  # exits (fails) on an unknown command/flag
            run.add(parsed.run.__name__)
    assert run == {"_api", "_worker", "_migrate", "_register_shipped"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_target_the_deployments(built: dict[str, list[Doc]], overlay: str) -> None:
    docs = built[overlay]
    hpa = one(docs, "HorizontalPodAutoscaler", "hanmo-api")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "hanmo-api",
    }
    for name in ("hanmo-api", "hanmo-worker"):  # the autoscalers own the replica counts
        assert "replicas" not in one(docs, "Deployment", name)["spec"]
    requests = next(containers(one(docs, "Deployment", "hanmo-api")))["resources"]
    assert "cpu" in requests["requests"]  # a CPU utilisation target needs a request


SCALED_OBJECT_SPEC = {
    "scaleTargetRef",
    "pollingInterval",
    "cooldownPeriod",
    "initialCooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "fallback",
    "advanced",
    "triggers",
}
PROMETHEUS_METADATA = {
    "serverAddress",
    "query",
    "queryParameters",
    "threshold",
    "activationThreshold",
    "namespace",
    "customHeaders",
    "ignoreNullValues",
    "unsafeSsl",
    "timeout",
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaled_object_scales_the_workers_on_a_query_that_names_no_version(
    built: dict[str, list[Doc]], overlay: str
) -> None:
    docs = built[overlay]
    scaled = one(docs, "ScaledObject", "hanmo-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert set(spec) <= SCALED_OBJECT_SPEC
    target = spec["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    worker = one(docs, "Deployment", target["name"])
    assert worker["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    # never 0: with no live worker a synchronous request is refused, not queued
    assert 1 <= spec["minReplicaCount"] <= spec["fallback"]["replicas"] <= spec["maxReplicaCount"]
    assert spec["fallback"]["failureThreshold"] >= 1
    (trigger,) = spec["triggers"]
    metadata = trigger["metadata"]
    assert trigger["type"] == "prometheus"
    assert set(metadata) <= PROMETHEUS_METADATA
    assert all(isinstance(v, str) for v in metadata.values()), "KEDA metadata values are strings"
    assert float(metadata["threshold"]) > 0
    assert metadata["ignoreNullValues"] == "false"  # a lost metric falls back, never reads 0
    assert metadata["serverAddress"].startswith("http")
    query = metadata["query"]
    assert query == "sum(max by (model) (hanmo_queue_backlog))"
    names = {m.name for m in QueueGauges(QueueReading({})).collect()}
    assert "hanmo_queue_backlog" in names  # the api exports what the query reads


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitors_scrape_named_ports_of_selected_services(
    built: dict[str, list[Doc]], overlay: str
) -> None:
    docs = built[overlay]
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert {m["metadata"]["name"] for m in monitors} == {"hanmo-api", "hanmo-worker"}
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert set(monitor["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            d
            for d in docs
            if d["kind"] == "Service" and labels_match(selector, d["metadata"]["labels"])
        ]
        assert len(services) == 1, monitor["metadata"]["name"]
        ports = {p["name"] for p in services[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
            assert endpoint["port"] in ports
            assert endpoint["path"] == "/metrics"


def test_gpu_overlay_gives_each_worker_a_gpu_and_the_cuda_image(
    built: dict[str, list[Doc]],
) -> None:
    cpu = one(built["cpu"], "Deployment", "hanmo-worker")
    gpu = one(built["gpu"], "Deployment", "hanmo-worker")
    (cpu_container,), (gpu_container,) = containers(cpu), containers(gpu)
    assert cpu_container["image"].startswith("hanmo-worker-cpu:")
    assert gpu_container["image"].startswith("hanmo-worker:")
    assert container_env(built["cpu"], cpu_container)["HANMO_DEVICE"] == "cpu"
    assert container_env(built["gpu"], gpu_container)["HANMO_DEVICE"] == "cuda:0"
    assert "nvidia.com/gpu" not in cpu_container["resources"]["limits"]
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] == 1
    pod = gpu["spec"]["template"]["spec"]
    assert pod["nodeSelector"]
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    migrate = one(built["gpu"], "Job", "hanmo-migrate")
    assert all(c["image"].startswith("hanmo-worker:") for c in containers(migrate))
