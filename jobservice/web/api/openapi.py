"""What the OpenAPI document says beyond what FastAPI derives from the endpoints' types.

The service checks ids and query parameters itself, with messages that say what to change; the
document states the same rules, so that a client can know them before it asks. It declares the
answers each endpoint can give, and no others.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Path, Query
from pydantic import BaseModel

from jobservice.db.query import SORT_FIELDS
from jobservice.db.rsql import LABEL_PREFIX
from jobservice.jobs.ids import ID_PATTERN
from jobservice.jobs.job import LABEL_KEY
from jobservice.jobs.public import API_KEY_HEADER, Message

_ERROR_DESCRIPTIONS = {
    400: "The request is not valid; the message says why.",
    401: "An API key is required.",
    403: "The API key does not open this partition.",
    404: "No such job in this partition.",
    413: "The body is over 1 MiB.",
    414: "The URL is over 8 KiB.",
    431: "The headers are over 16 KiB.",
    503: "Temporal or the job database cannot be reached.",
}


_CHALLENGE = {
    "WWW-Authenticate": {"description": "The scheme: Bearer.", "schema": {"type": "string"}}
}


def _error(code: int) -> dict[str, Any]:
    """An error answer as the document shows it: a ``{"message": ...}``."""
    return {
        "description": _ERROR_DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}},
    }


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers ``codes``, each a ``{"message": ...}``."""
    return {
        code: {
            "model": Message,
            "description": _ERROR_DESCRIPTIONS[code],
            **({"headers": _CHALLENGE} if code == 401 else {}),
        }
        for code in codes
    }


SELECTION_ERRORS = errors(400, 401, 403, 503)
"""What an endpoint over a partition's jobs can answer besides its success."""
JOB_ERRORS = errors(400, 401, 403, 404, 503)
"""What an endpoint over one job can answer besides its success."""

_LABEL_KEY = LABEL_KEY.pattern
LABEL_KEYS = f"^{_LABEL_KEY}(,{_LABEL_KEY})*$"
LABEL_KEYS_OR_ANY = f"^({_LABEL_KEY}(,{_LABEL_KEY})*)?$"
SORT = (
    f"^({'|'.join(SORT_FIELDS)}|{LABEL_PREFIX.replace('.', '[.]')}{_LABEL_KEY})"
    ":([aA][sS][cC]|[dD][eE][sS][cC])$"
)


MERGE_PATCH = "application/merge-patch+json"


def merge_patch_of(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of an endpoint that takes a JSON merge patch (RFC 7386) of
    ``model``, as ``application/merge-patch+json`` or plain ``application/json``."""
    schema = model.model_json_schema(by_alias=True)
    content = {MERGE_PATCH: {"schema": schema}, "application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


def id_path(description: str, example: str, longest: int) -> Any:
    """A partition or job id in the path, with the rules of ``validate_ids``."""
    return Path(
        description=description,
        examples=[example],
        json_schema_extra={
            "minLength": 1,
            "maxLength": longest,
            "pattern": ID_PATTERN,
        },
    )


def query_parameter(description: str, alias: str | None = None, **schema: Any) -> Any:
    """A query parameter whose rules the document states; the service checks them itself."""
    return Query(alias=alias, description=description, json_schema_extra=schema or None)


JOB_EXAMPLES: dict[str, Any] = {
    "task": {
        "summary": "A task: the numbers 0 to 999, each to the local no-op handler",
        "value": {
            "name": "numbers",
            "labels": {"team": "red"},
            "task": {
                "taskClassifier": "BatchWorker",
                "taskApiVersion": 1,
                "taskPipe": "batch-worker",
                "targetPipe": "local:noop",
                "taskData": {
                    "batchType": "range",
                    "batchDefinition": "0-1000",
                    "targetPipe": "local:noop",
                },
            },
        },
    },
    "type": {
        "summary": "A job type (JOBSERVICE_JOB_TYPES_DIR) with its parameters",
        "value": {"type": "count-range", "parameters": {"items": 1000}, "failureTolerance": "1%"},
    },
}


def document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, told the truth: a request it cannot read is a 400 with a message
    here, not its 422; and where API keys are set, the partitions' paths need one."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    openapi = FastAPI.openapi(app)
    components = openapi.setdefault("components", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(name, None)
    keyed = bool(app.state.settings.api.keys)
    if keyed:
        components["securitySchemes"] = {
            "apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
            "bearer": {"type": "http", "scheme": "bearer"},
        }
    for path, operations in openapi["paths"].items():
        for operation in operations.values():
            operation["responses"].pop("422", None)
            # Any request can be past the bounds the API keeps on every URL, header and body.
            bounds = (413, 414, 431) if "requestBody" in operation else (414, 431)
            operation["responses"].update({str(code): _error(code) for code in bounds})
            if keyed and "{partition_id}" in path:
                operation["security"] = [{"apiKey": []}, {"bearer": []}]
    return openapi
