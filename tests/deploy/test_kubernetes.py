"""deploy/kubernetes: each kustomization rendered with kubectl, its resources checked against
the Kubernetes 1.33 schemas with kubernetes-validate (strict: an unknown field fails), KEDA's
resources against what KEDA documents (tests/deploy/keda.py), and the pods against the
settings and the CLI they run."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest

from jobservice.settings import Settings
from tests.deploy.keda import SCHEMAS, reference_problems, schema_problems
from tests.deploy.names import command_problem
from tests.deploy.tools import KUSTOMIZATIONS, kustomize

KUBERNETES = "1.33"
Resource = dict[str, Any]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Resource]]:
    return {directory.name: kustomize(directory) for directory in KUSTOMIZATIONS}


@pytest.fixture(params=[directory.name for directory in KUSTOMIZATIONS])
def resources(
    request: pytest.FixtureRequest, rendered: dict[str, list[Resource]]
) -> list[Resource]:
    found: list[Resource] = rendered[request.param]
    return found


def _one(resources: list[Resource], kind: str, name: str) -> Resource:
    matching = [
        each for each in resources if each["kind"] == kind and each["metadata"]["name"] == name
    ]
    assert len(matching) == 1, f"{kind}/{name}: {len(matching)} rendered"
    return matching[0]


def _pods(resources: list[Resource]) -> Iterator[tuple[str, dict[str, Any]]]:
    for each in resources:
        if each["kind"] in ("Deployment", "Job"):
            yield f"{each['kind']}/{each['metadata']['name']}", each["spec"]["template"]["spec"]


def _settings(resources: list[Resource]) -> Settings:
    """The settings the pods get from the ConfigMap (credentials aside)."""
    data = _one(resources, "ConfigMap", "jobservice")["data"]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in data.items():
            patch.setenv(name, value)
        return Settings()


def test_every_resource_kubernetes_knows_passes_its_schema(resources: list[Resource]) -> None:
    checked = 0
    for each in resources:
        if each["kind"] in SCHEMAS:
            continue  # KEDA's: below
        try:
            kubernetes_validate.validate(each, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            pytest.fail(f"{each['kind']}/{each['metadata']['name']} at {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            pytest.fail(error.message)
        checked += 1
    assert checked >= 7


def test_kubernetes_validate_refuses_an_unknown_field(rendered: dict[str, list[Resource]]) -> None:
    deployment = copy.deepcopy(_one(rendered["base"], "Deployment", "jobservice-worker"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePolicy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePolicy"):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_keda_resources_keep_to_what_keda_documents(resources: list[Resource]) -> None:
    keda = [each for each in resources if each["kind"] in SCHEMAS]
    assert {each["kind"] for each in keda} == set(SCHEMAS)
    problems = [problem for each in keda for problem in schema_problems(each)]
    assert problems + reference_problems(resources) == []


def test_the_keda_checks_refuse_what_keda_does_not_document(
    rendered: dict[str, list[Resource]],
) -> None:
    base = rendered["base"]
    worker = copy.deepcopy(_one(base, "ScaledObject", "jobservice-worker"))
    worker["spec"]["triggers"][0]["metadata"]["queueSize"] = "16"
    worker["spec"]["triggers"][0]["metadata"]["targetQueueSize"] = 16
    worker["spec"]["minReplicas"] = 1
    problems = "\n".join(schema_problems(worker))
    assert "'queueSize' was unexpected" in problems
    assert "16 is not of type 'string'" in problems
    assert "'minReplicas' was unexpected" in problems
    tracking = copy.deepcopy(_one(base, "ScaledObject", "jobservice-tracking"))
    tracking["spec"]["triggers"][0]["metadata"]["mode"] = "Length"
    tracking["spec"]["scaleTargetRef"]["name"] = "jobservice-trackers"
    assert schema_problems(tracking)
    others = [each for each in base if each["metadata"]["name"] != "jobservice-tracking"]
    assert reference_problems([*others, tracking])


def test_the_hpa_behaviour_keda_passes_on_is_a_valid_one(resources: list[Resource]) -> None:
    validated: list[str] = []
    for scaled in (each for each in resources if each["kind"] == "ScaledObject"):
        behavior = scaled["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
        if "behavior" not in behavior:
            continue
        autoscaler = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": scaled["metadata"]["name"]},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                "maxReplicas": scaled["spec"]["maxReplicaCount"],
                "behavior": behavior["behavior"],
            },
        }
        kubernetes_validate.validate(autoscaler, KUBERNETES, strict=True)
        validated.append(f"HorizontalPodAutoscaler/{scaled['metadata']['name']}")
    # The workers' scale-down waits out the gaps between bursts; the trackers' takes the default
    assert validated == ["HorizontalPodAutoscaler/jobservice-worker"]


def test_the_scalers_watch_the_queue_and_pipe_the_pods_serve(resources: list[Resource]) -> None:
    settings = _settings(resources)
    workers = _one(resources, "ScaledObject", "jobservice-worker")
    trackers = _one(resources, "ScaledObject", "jobservice-tracking")
    (temporal,) = workers["spec"]["triggers"]
    assert temporal["type"] == "temporal"
    assert temporal["metadata"]["endpoint"] == settings.temporal.address
    assert temporal["metadata"]["namespace"] == settings.temporal.namespace
    assert temporal["metadata"]["taskQueue"] == settings.temporal.task_queue
    # Workers run workflow tasks and activities (the chunks) alike.
    assert set(temporal["metadata"]["queueTypes"].split(",")) == {"workflow", "activity"}
    (rabbitmq,) = trackers["spec"]["triggers"]
    assert rabbitmq["type"] == "rabbitmq"
    assert rabbitmq["metadata"]["queueName"] == settings.rabbitmq.tracking_pipe
    assert rabbitmq["metadata"]["mode"] == "QueueLength"
    for scaled in (workers, trackers):
        assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
        target = _one(resources, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"], "the ScaledObject owns the replica count"


def test_every_pod_runs_locked_down_with_bounded_resources(resources: list[Resource]) -> None:
    for name, pod in _pods(resources):
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] > 0, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        scratch = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
        for container in pod["containers"]:
            where = f"{name} {container['name']}"
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }, where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, where
            mounted = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert mounted.get("/tmp") in scratch, f"{where}: /tmp is read-only"


def test_long_running_pods_are_probed_on_their_own_endpoints(resources: list[Resource]) -> None:
    settings = _settings(resources)
    assert settings.monitor.host == "0.0.0.0", "the kubelet probes the pod's address"
    ports = {
        "jobservice-api": settings.api.port,
        "jobservice-worker": settings.monitor.port,
        "jobservice-tracking": settings.monitor.port,
    }
    for name, port in ports.items():
        template = _one(resources, "Deployment", name)["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port), f"{name}: Prometheus scrapes it"
        assert annotations["prometheus.io/path"] == "/metrics", name
        (container,) = template["spec"]["containers"]
        named = {each["name"]: each["containerPort"] for each in container["ports"]}
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            check = container[probe]["httpGet"]
            assert check["path"] == path, f"{name} {probe}"
            # /readyz waits up to 3 s on Temporal and the database; Kubernetes' default is 1 s
            assert container[probe].get("timeoutSeconds", 1) > 3, f"{name} {probe}"
            assert named.get(check["port"], check["port"]) == port, f"{name} {probe}"
        # The data folder: only `dev` and a SQLite job database write there, but a pod that
        # does must not fail on the read-only root.
        mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert str(settings.dev.data_dir) in mounted, name


def test_workers_are_killed_only_after_their_shutdown_grace(resources: list[Resource]) -> None:
    grace = _settings(resources).worker_shutdown_grace_seconds
    for name in ("jobservice-worker", "jobservice-tracking"):
        pod = _one(resources, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > grace, name


def test_worker_disruptions_take_one_worker_at_a_time(resources: list[Resource]) -> None:
    budget = _one(resources, "PodDisruptionBudget", "jobservice-worker")
    assert budget["spec"]["maxUnavailable"] == 1
    workers = _one(resources, "Deployment", "jobservice-worker")
    labels = workers["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_every_command_of_the_jobservice_image_is_a_cli_command(resources: list[Resource]) -> None:
    commands = {}
    for name, pod in _pods(resources):
        for container in pod["containers"]:
            assert container["image"].rpartition(":")[0].endswith("jobservice"), container["image"]
            assert "command" not in container, f"{name}: the image's entrypoint is jobservice"
            problem = command_problem(container["args"])
            assert problem is None, f"{name}: {problem}"
            commands[name] = container["args"]
    assert commands == {
        "Deployment/jobservice-api": ["api"],
        "Deployment/jobservice-worker": ["worker", "--no-tracking"],
        "Deployment/jobservice-tracking": ["tracking"],
        "Job/jobservice-db-upgrade": ["db", "upgrade"],
    }


def _secret_keys_read(resources: list[Resource]) -> set[tuple[str, str]]:
    read = set()
    for _, pod in _pods(resources):
        for container in pod["containers"]:
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    read.add((reference["name"], reference["key"]))
            assert not [each for each in container.get("envFrom", []) if "secretRef" in each]
    for each in resources:
        if each["kind"] == "TriggerAuthentication":
            read |= {(ref["name"], ref["key"]) for ref in each["spec"]["secretTargetRef"]}
    return read


def test_the_dev_example_secret_holds_every_key_the_pods_read(
    rendered: dict[str, list[Resource]],
) -> None:
    dev = rendered["dev"]
    secret = _one(dev, "Secret", "jobservice")
    assert "jobservice/example" in secret["metadata"]["annotations"], "marked as an example"
    held = {("jobservice", key) for key in secret["stringData"]}
    assert _secret_keys_read(dev) == held


def test_production_brings_no_secret_to_overwrite_and_refuses_an_open_api(
    rendered: dict[str, list[Resource]],
) -> None:
    production = rendered["production"]
    assert [each for each in production if each["kind"] == "Secret"] == []
    assert _secret_keys_read(production) == _secret_keys_read(rendered["dev"])
    assert _settings(production).api.production is True
    assert _settings(rendered["dev"]).api.production is False


def test_the_overlays_size_dev_small_and_production_large(
    rendered: dict[str, list[Resource]],
) -> None:
    def size(overlay: str) -> tuple[int, int]:
        api = _one(rendered[overlay], "Deployment", "jobservice-api")
        workers = _one(rendered[overlay], "ScaledObject", "jobservice-worker")
        return api["spec"]["replicas"], workers["spec"]["minReplicaCount"]

    assert size("dev") == (1, 1)
    assert size("production") > size("base") > size("dev")
    namespaces = {
        overlay: {
            each["metadata"].get("namespace")
            for each in rendered[overlay]
            if each["kind"] != "Namespace"
        }
        for overlay in ("dev", "production")
    }
    assert namespaces == {"dev": {"jobservice-dev"}, "production": {"jobservice"}}
