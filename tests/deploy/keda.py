"""What KEDA's ScaledObject and TriggerAuthentication may say, written down from KEDA's docs
(v2.22): the reference of the ScaledObject (https://keda.sh/docs/2.22/reference/scaledobject-spec/),
of authentication (https://keda.sh/docs/2.22/concepts/authentication/), and of the two scalers
deploy/ uses. The Kubernetes schemas of kubernetes-validate do not cover these custom resources;
these schemas close that gap for the fields deploy/ can get wrong."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator

Resource = Mapping[str, Any]

# https://keda.sh/docs/2.22/scalers/temporal/ "Parameter list"; deprecated ones left out.
TEMPORAL_METADATA = frozenset(
    {
        "endpoint",
        "endpointFromEnv",
        "namespace",
        "activationTargetQueueSize",
        "targetQueueSize",
        "taskQueue",
        "queueTypes",
        "workerDeploymentName",
        "workerDeploymentBuildId",
        "includeRunningWorkflowCount",
        "workflowTaskQueueForCount",
        "apiKeyFromEnv",
        "minConnectTimeout",
        "unsafeSsl",
        "tlsServerName",
        "enableTLS",
    }
)
# Same page, "Authentication Parameters".
TEMPORAL_AUTHENTICATION = frozenset({"apiKey", "ca", "cert", "key", "keyPassword"})

# https://keda.sh/docs/2.22/scalers/rabbitmq-queue/ "Parameters list"; the deprecated
# queueLength left out.
RABBITMQ_METADATA = frozenset(
    {
        "host",
        "queueName",
        "mode",
        "value",
        "activationValue",
        "protocol",
        "vhostName",
        "useRegex",
        "pageSize",
        "operation",
        "timeout",
        "excludeUnacknowledged",
        "unsafeSsl",
        "hostFromEnv",
        "usernameFromEnv",
        "passwordFromEnv",
    }
)
RABBITMQ_MODES = (
    "QueueLength",
    "MessageRate",
    "DeliverGetRate",
    "PublishedToDeliveredRatio",
    "ExpectedQueueConsumptionTime",
)
# Same page, "Authentication Parameters".
RABBITMQ_AUTHENTICATION = frozenset(
    {"host", "vhostName", "username", "password", "tls", "ca", "cert", "key"}
)

AUTHENTICATION_PARAMETERS = {
    "temporal": TEMPORAL_AUTHENTICATION,
    "rabbitmq": RABBITMQ_AUTHENTICATION,
}


def _strings(names: Iterable[str], **narrower: Any) -> dict[str, Any]:
    """A trigger's metadata: KEDA takes a map of strings, so 16 must be written "16"."""
    properties: dict[str, Any] = {name: {"type": "string"} for name in sorted(names)}
    properties.update(narrower)
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _when(trigger_type: str, metadata: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "if": {"properties": {"type": {"const": trigger_type}}, "required": ["type"]},
        "then": {"properties": {"metadata": {**metadata, "required": required}}},
    }


_TRIGGER = {
    "type": "object",
    "required": ["type", "metadata"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": ["temporal", "rabbitmq"]},
        "metadata": {"type": "object"},
        "name": {"type": "string"},
        "useCachedMetrics": {"type": "boolean"},
        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
        "authenticationRef": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "kind": {"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]},
            },
        },
    },
    "allOf": [
        _when(
            "temporal",
            _strings(
                TEMPORAL_METADATA,
                queueTypes={
                    "type": "string",
                    "pattern": "^(workflow|activity)(,(workflow|activity))?$",
                },
            ),
            ["taskQueue"],
        ),
        _when(
            "rabbitmq",
            _strings(
                RABBITMQ_METADATA,
                mode={"enum": list(RABBITMQ_MODES)},
                protocol={"enum": ["auto", "http", "amqp"]},
            ),
            ["queueName", "mode", "value"],
        ),
    ],
}

_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

_COUNT = {"type": "integer", "minimum": 0}


def _resource(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


SCALED_OBJECT = _resource(
    "ScaledObject",
    {
        "type": "object",
        "required": ["scaleTargetRef", "triggers"],
        "additionalProperties": False,
        "properties": {
            "scaleTargetRef": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                    "envSourceContainerName": {"type": "string"},
                },
            },
            "pollingInterval": _COUNT,
            "cooldownPeriod": _COUNT,
            "initialCooldownPeriod": _COUNT,
            "idleReplicaCount": _COUNT,
            "minReplicaCount": _COUNT,
            "maxReplicaCount": _COUNT,
            "fallback": {
                "type": "object",
                "required": ["failureThreshold", "replicas"],
                "additionalProperties": False,
                "properties": {
                    "failureThreshold": _COUNT,
                    "replicas": _COUNT,
                    "behavior": {"type": "string"},
                },
            },
            "advanced": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "restoreToOriginalReplicaCount": {"type": "boolean"},
                    "horizontalPodAutoscalerConfig": {
                        "type": "object",
                        "additionalProperties": False,
                        # behavior is the HPA's own; the test checks it against Kubernetes'
                        # schema of HorizontalPodAutoscaler.
                        "properties": {"name": {"type": "string"}, "behavior": {}},
                    },
                    "scalingModifiers": {"type": "object"},
                },
            },
            "triggers": {"type": "array", "minItems": 1, "items": _TRIGGER},
        },
    },
)

_PARAMETER = {
    "type": "object",
    "required": ["parameter", "name", "key"],
    "additionalProperties": False,
    "properties": {
        "parameter": {"type": "string"},
        "name": {"type": "string"},
        "key": {"type": "string"},
    },
}

TRIGGER_AUTHENTICATION = _resource(
    "TriggerAuthentication",
    {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "secretTargetRef": {"type": "array", "items": _PARAMETER},
            "env": {"type": "array"},
            "podIdentity": {"type": "object"},
            "boundServiceAccountToken": {"type": "array"},
            "hashiCorpVault": {"type": "object"},
            "azureKeyVault": {"type": "object"},
            "awsSecretManager": {"type": "object"},
            "gcpSecretManager": {"type": "object"},
        },
    },
)

SCHEMAS = {"ScaledObject": SCALED_OBJECT, "TriggerAuthentication": TRIGGER_AUTHENTICATION}


def schema_problems(resource: Resource) -> list[str]:
    """Where a KEDA resource leaves its documented shape."""
    validator = Draft202012Validator(SCHEMAS[resource["kind"]])
    name = f"{resource['kind']}/{resource.get('metadata', {}).get('name')}"
    problems = []
    for error in validator.iter_errors(resource):
        where = ".".join(str(part) for part in error.absolute_path) or "(top)"
        problems.append(f"{name} at {where}: {error.message}")
    return problems


def reference_problems(resources: Iterable[Resource]) -> list[str]:
    """What ScaledObjects name and is not among ``resources``: the Deployment they scale, the
    TriggerAuthentication a trigger uses, a parameter that authentication may not give."""
    by_kind: dict[str, dict[str, Resource]] = {}
    for resource in resources:
        by_kind.setdefault(resource["kind"], {})[resource["metadata"]["name"]] = resource
    deployments = by_kind.get("Deployment", {})
    authentications = by_kind.get("TriggerAuthentication", {})
    problems = []
    for name, scaled in by_kind.get("ScaledObject", {}).items():
        target = scaled["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            problems.append(f"ScaledObject/{name} scales Deployment/{target}, which is not there")
        for trigger in scaled["spec"]["triggers"]:
            reference = trigger.get("authenticationRef", {}).get("name")
            if reference is None:
                continue
            if reference not in authentications:
                problems.append(
                    f"ScaledObject/{name} uses TriggerAuthentication/{reference}, not there"
                )
                continue
            allowed = AUTHENTICATION_PARAMETERS[trigger["type"]]
            for ref in authentications[reference]["spec"].get("secretTargetRef", []):
                if ref["parameter"] not in allowed:
                    problems.append(
                        f"TriggerAuthentication/{reference} gives {ref['parameter']!r}, which the "
                        f"{trigger['type']} scaler does not take ({sorted(allowed)})"
                    )
    return problems
