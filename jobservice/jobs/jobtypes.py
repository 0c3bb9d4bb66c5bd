"""Job types: a job created by ``type`` + ``parameters`` instead of a full task.

A job type is one YAML file in the job types folder (``JOBSERVICE_JOB_TYPES_DIR``); its id is
the file name without ``.yaml``/``.yml``. Files whose names start with ``.`` and sub-folders are
not read, so a Kubernetes ConfigMap mounted as the folder works. A definition holds:

``description``
    Optional text for people.
``parameters``
    A JSON Schema (draft 2020-12 unless it names another ``$schema``) for the job's
    ``parameters``. Without it the type takes no parameters. Missing parameters are validated
    as ``{}``; ``default`` keywords of declared properties are filled in after validation.
``configuration``
    Optional string values for the template, each overridable per deployment by the
    environment variable ``JOBSERVICE_JOB_TYPE_<TYPEID>_<KEY>`` (upper case, ``-`` as ``_``).
    Values are strings because the environment can only give strings: an override must not
    change a value's type.
``task``
    The task template, a mapping. In its values (not its keys), a string that is exactly one
    ``${path}`` becomes the value at that path, of whatever JSON type; ``${path}`` inside other
    text is replaced by the value as text (non-strings as JSON). ``$${`` is a literal ``${``.
    Paths: ``type``, ``partitionId``, ``jobId``, ``configuration.<key>`` and
    ``parameters.<a>.<b>...``.

Every path is checked when the file is loaded: its root, the configuration key, and a parameter
path against the schema's ``properties`` as far as the schema declares them. A parameter that
is optional and has no default, or any path the given parameters do not reach, renders as
``null`` (``"null"`` inside text).

A broken definition fails the whole load with one :class:`JobTypeDefinitionError` naming every
broken file, unlike the plugin registry, which skips a broken plugin with a warning: plugins
are installed code, one package's bug should not take the others down, whereas job types are
this deployment's own API. A skipped type would surface as clients' "unknown job type" errors
long after the deployment looked healthy; refusing to start shows the operator at once.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jsonschema import exceptions, validators
from jsonschema.protocols import Validator

from jobservice.errors import InvalidJobError, JobServiceError

ENV_PREFIX = "JOBSERVICE_JOB_TYPE_"
_SUFFIXES = (".yaml", ".yml")
_ID = re.compile(r"[A-Za-z0-9_\-]+")
_KEYS = {"description", "parameters", "configuration", "task"}
_REF = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_PATH = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*")
_JOB_FIELDS = ("type", "partitionId", "jobId")
_ROOTS = (*_JOB_FIELDS, "configuration", "parameters")
# Without a schema a type takes no parameters; empty ``properties`` makes ${parameters.x} an error.
_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


class JobTypeDefinitionError(JobServiceError):
    """A job type definition file cannot be used. Raised at load time: fix the file."""


@dataclass(frozen=True)
class JobType:
    """One job type: turns a job's parameters into its task."""

    id: str
    description: str | None
    parameters_schema: Mapping[str, Any]
    configuration: Mapping[str, str]
    task_template: Mapping[str, Any]

    @classmethod
    def from_definition(
        cls, type_id: str, definition: Any, environ: Mapping[str, str] = os.environ
    ) -> JobType:
        """A job type from a parsed definition; a problem is a :class:`JobTypeDefinitionError`."""
        if not _ID.fullmatch(type_id):
            raise JobTypeDefinitionError(f"job type id {type_id!r} is not [A-Za-z0-9_-]+")
        if not isinstance(definition, dict):
            raise JobTypeDefinitionError("a definition is a mapping with at least `task`")
        try:
            # YAML can hold what JSON cannot (dates, non-string keys); tasks travel as JSON.
            definition = json.loads(json.dumps(definition))
        except (TypeError, ValueError) as exc:
            raise JobTypeDefinitionError(f"{exc}; quote dates and other such values") from None
        unknown = sorted(set(definition) - _KEYS)
        if unknown:
            raise JobTypeDefinitionError(
                f"unknown keys {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
            )
        if "task" not in definition or not isinstance(definition["task"], dict):
            raise JobTypeDefinitionError("`task` is missing or not a mapping")
        description = definition.get("description")
        if description is not None and not isinstance(description, str):
            raise JobTypeDefinitionError("`description` is not a string")
        schema = definition.get("parameters", _NO_PARAMETERS)
        if not isinstance(schema, dict):
            raise JobTypeDefinitionError("`parameters` is not a mapping (a JSON Schema object)")
        try:
            validators.validator_for(schema, default=validators.Draft202012Validator).check_schema(
                schema
            )
        except exceptions.SchemaError as exc:
            where = "".join(f"[{p!r}]" for p in exc.absolute_path)
            raise JobTypeDefinitionError(
                f"`parameters` is not a valid JSON Schema: {exc.message} (at parameters{where})"
            ) from None
        job_type = cls(
            id=type_id,
            description=description,
            parameters_schema=schema,
            configuration=_configuration(type_id, definition.get("configuration", {}), environ),
            task_template=definition["task"],
        )
        for path in _paths(job_type.task_template):
            job_type._check_path(path)
        return job_type

    @cached_property
    def _validator(self) -> Validator:
        kind = validators.validator_for(
            self.parameters_schema, default=validators.Draft202012Validator
        )
        return kind(self.parameters_schema, format_checker=kind.FORMAT_CHECKER)

    def render(self, *, partition_id: str, job_id: str, parameters: Any) -> dict[str, Any]:
        """The job's task. Parameters the schema refuses are an :class:`InvalidJobError`."""
        if parameters is None:
            parameters = {}
        errors = list(self._validator.iter_errors(parameters))
        if errors:
            first = exceptions.best_match(errors)
            more = {1: "", 2: " (and 1 more problem)"}.get(
                len(errors), f" (and {len(errors) - 1} more problems)"
            )
            raise InvalidJobError(f"{_json_path(first.absolute_path)}: {first.message}{more}")
        values = {
            "type": self.id,
            "partitionId": partition_id,
            "jobId": job_id,
            "configuration": dict(self.configuration),
            "parameters": _with_defaults(self.parameters_schema, parameters),
        }
        rendered = _render(self.task_template, values)
        assert isinstance(rendered, dict)  # from_definition makes the template a mapping
        return rendered

    def _check_path(self, path: str) -> None:
        if not _PATH.fullmatch(path):
            raise JobTypeDefinitionError(f"`task`: ${{{path}}} is not a dotted path")
        root, *rest = path.split(".")
        problem = None
        if root not in _ROOTS:
            problem = f"unknown root {root!r}; known: {', '.join(_ROOTS)}"
        elif root in _JOB_FIELDS and rest:
            problem = f"{root} is text, it has no fields"
        elif root == "configuration" and rest and rest[0] not in self.configuration:
            known = ", ".join(sorted(self.configuration)) or "none"
            problem = f"no configuration key {rest[0]!r}; known: {known}"
        elif root == "configuration" and len(rest) > 1:
            problem = "configuration values are text, they have no fields"
        elif root == "parameters":
            problem = _schema_problem(self.parameters_schema, rest)
        if problem:
            raise JobTypeDefinitionError(f"`task`: ${{{path}}}: {problem}")


@dataclass(frozen=True)
class JobTypes:
    """The job types one service offers, by id."""

    types: Mapping[str, JobType] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path | None, environ: Mapping[str, str] = os.environ) -> JobTypes:
        """Every definition in ``folder``; None is no job types. See the module docstring."""
        if folder is None:
            return cls()
        if not folder.is_dir():
            raise JobTypeDefinitionError(f"job types folder {folder} is not a folder")
        types: dict[str, JobType] = {}
        problems: list[str] = []
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.suffix not in _SUFFIXES or not path.is_file():
                continue
            type_id = path.stem
            try:
                if type_id in types:
                    raise JobTypeDefinitionError(f"job type {type_id!r} is defined twice")
                definition = yaml.safe_load(path.read_text(encoding="utf-8"))
                types[type_id] = JobType.from_definition(type_id, definition, environ)
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark
                where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                problems.append(f"{path}: not valid YAML: {exc.problem}{where}")
            except (JobTypeDefinitionError, yaml.YAMLError, OSError, UnicodeError) as exc:
                problems.append(f"{path}: {exc}")
        if problems:
            raise JobTypeDefinitionError("broken job type definitions:\n" + "\n".join(problems))
        return cls(types)

    def get(self, type_id: str) -> JobType:
        """The job type ``type_id``; an unknown one is an :class:`InvalidJobError`."""
        try:
            return self.types[type_id]
        except KeyError:
            if not self.types:
                raise InvalidJobError(
                    f"unknown job type {type_id!r}: no job types are configured"
                ) from None
            known = ", ".join(self.ids())
            raise InvalidJobError(f"unknown job type {type_id!r}; known: {known}") from None

    def ids(self) -> list[str]:
        return sorted(self.types)


def _configuration(type_id: str, raw: Any, environ: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise JobTypeDefinitionError("`configuration` is not a mapping")
    configuration: dict[str, str] = {}
    for key, value in raw.items():
        if not _ID.fullmatch(key):
            raise JobTypeDefinitionError(f"configuration key {key!r} is not [A-Za-z0-9_-]+")
        if not isinstance(value, str):
            raise JobTypeDefinitionError(
                f"configuration.{key} is not text; quote it (environment overrides are text)"
            )
        configuration[key] = environ.get(_env_name(type_id, key), value)
    return configuration


def _env_name(type_id: str, key: str) -> str:
    return f"{ENV_PREFIX}{type_id}_{key}".upper().replace("-", "_")


def _paths(template: Any) -> Iterator[str]:
    """Every path the template's strings refer to."""
    if isinstance(template, dict):
        for value in template.values():
            yield from _paths(value)
    elif isinstance(template, list):
        for value in template:
            yield from _paths(value)
    elif isinstance(template, str):
        if "${" in _REF.sub("", template):
            raise JobTypeDefinitionError(f"`task`: {template!r} has a ${{ without a closing }}")
        yield from (match[1] for match in _REF.finditer(template) if match[1] is not None)


def _schema_problem(schema: Any, names: list[str]) -> str | None:
    node = schema
    for depth, name in enumerate(names):
        properties = node.get("properties") if isinstance(node, dict) else None
        if not isinstance(properties, dict):
            return None  # the schema does not list them: the parameters decide at render time
        if name not in properties:
            where = ".".join(["parameters", *names[:depth]])
            return f"the parameters schema declares no property {name!r} in {where}"
        node = properties[name]
    return None


def _with_defaults(schema: Any, value: Any) -> Any:
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return value
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return value
    filled = dict(value)
    for name, subschema in properties.items():
        if name in filled:
            filled[name] = _with_defaults(subschema, filled[name])
        elif isinstance(subschema, dict) and "default" in subschema:
            filled[name] = copy.deepcopy(subschema["default"])
    return filled


def _lookup(values: Mapping[str, Any], path: str) -> Any:
    value: Any = values
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    return copy.deepcopy(value)


def _render(template: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(template, dict):
        return {key: _render(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [_render(value, values) for value in template]
    if not isinstance(template, str):
        return template
    whole = _REF.fullmatch(template)
    if whole and whole[1] is not None:
        return _lookup(values, whole[1])

    def text(match: re.Match[str]) -> str:
        if match[1] is None:
            return "${"
        value = _lookup(values, match[1])
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

    return _REF.sub(text, template)


def _json_path(path: Iterable[str | int]) -> str:
    return "parameters" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
