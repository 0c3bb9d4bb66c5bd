"""Form inputs from a JSON Schema, and the posted text back as values of the schema's types.

A property is one input named by its dotted path (``parameters.source.path``); an object with
``properties`` is its properties' inputs. What one input cannot hold (a list, ``oneOf``, ``$ref``,
an object of free keys) is a ``json`` input whose text is JSON. Whether the values then satisfy
the schema is the job type's to say when the job is submitted; here text only becomes the types
the schema names, so that a form filled in as it asks gives parameters the schema takes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jobservice.errors import InvalidRequestError

FieldKind = Literal["text", "textarea", "integer", "number", "checkbox", "select", "json"]
_SCALARS: dict[str, FieldKind] = {
    "string": "text",
    "integer": "integer",
    "number": "number",
    "boolean": "checkbox",
}
_COMPOSED = ("$ref", "oneOf", "anyOf", "allOf")
_UNCHECKED = frozenset({"", "false", "off", "0"})
"""What a checkbox may post and still be unchecked, e.g. a hidden input before it."""
_LEFT_OUT = object()

Path = tuple[str, ...]


@dataclass(frozen=True)
class Choice:
    """One option of an input: the text posted, and the text shown."""

    value: str
    label: str


@dataclass(frozen=True)
class FormField:
    """One input of a form, named as it is posted.

    A ``select`` posts one of its ``choices``; for a ``text`` input they are suggestions (a
    datalist), as a target pipe is one of the item handlers or any queue. ``default`` is the
    text the input starts with; a ``checkbox`` starts checked when it is ``"true"``.
    """

    name: str
    label: str
    kind: FieldKind
    required: bool = False
    default: str | None = None
    description: str | None = None
    choices: tuple[Choice, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None


class FormError(InvalidRequestError):
    """A posted form the service cannot take. ``problems`` holds each by the name of the input
    it is about ("" for the form as a whole), so that a page can show it beside that input."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = dict(problems)


def schema_fields(schema: Mapping[str, Any], prefix: str = "parameters") -> list[FormField]:
    """The inputs for a JSON Schema: an object's properties, or one ``json`` input ``prefix``."""
    return [
        _field(".".join((prefix, *path)), leaf, required)
        for path, leaf, required in _leaves(schema)
    ]


def schema_values(
    schema: Mapping[str, Any],
    form: Mapping[str, object],
    problems: dict[str, str],
    prefix: str = "parameters",
) -> Any:
    """What the inputs of :func:`schema_fields` posted, in the schema's types; an input left
    empty is left out, an unchecked checkbox is false. What cannot be read goes to ``problems``."""
    values: dict[str, Any] = {}
    for path, leaf, _ in _leaves(schema):
        name = ".".join((prefix, *path))
        try:
            value = _value(leaf, posted(form, name))
        except ValueError as exc:
            problems.setdefault(name, f"{name}: {exc}")
            continue
        if not path:
            return None if value is _LEFT_OUT else value
        if value is not _LEFT_OUT:
            _place(values, path, value)
    return values


def posted(form: Mapping[str, object], name: str) -> str | None:
    """The text posted for ``name``; None when the form has no such input (a file is no text:
    the form asks for none)."""
    value = form.get(name)
    return value if isinstance(value, str) else None


def as_text(value: Any) -> str:
    """A JSON value as an input shows it: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _kind(schema: Any) -> FieldKind | None:
    """The input for ``schema``; None for an object whose properties are inputs of their own."""
    if not isinstance(schema, Mapping) or any(key in schema for key in _COMPOSED):
        return "json"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return "select"
    kind = schema.get("type", "object" if "properties" in schema else None)
    if kind == "object" and isinstance(schema.get("properties"), Mapping):
        return None
    return _SCALARS.get(kind, "json") if isinstance(kind, str) else "json"


def _leaves(
    schema: Any, path: Path = (), required: bool = False
) -> Iterator[tuple[Path, Any, bool]]:
    """Every input's path, schema and whether it is needed; the parameters themselves always are."""
    if _kind(schema) is not None:
        yield path, schema, required
        return
    needed = schema.get("required", [])
    for name, subschema in schema["properties"].items():
        yield from _leaves(subschema, (*path, name), (required or not path) and name in needed)


def _field(name: str, schema: Any, required: bool) -> FormField:
    kind = _kind(schema)
    assert kind is not None  # _leaves yields inputs only
    spec: Mapping[str, Any] = schema if isinstance(schema, Mapping) else {}
    default = spec.get("default")
    if "default" in spec:
        default = json.dumps(default) if kind == "json" else as_text(default)
    return FormField(
        name=name,
        label=_text(spec.get("title")) or name.rsplit(".", 1)[-1],
        kind=kind,
        required=required,
        default=default,
        description=_text(spec.get("description")),
        choices=tuple(Choice(as_text(v), as_text(v)) for v in spec["enum"])
        if kind == "select"
        else (),
        minimum=_bound(spec.get("minimum")),
        maximum=_bound(spec.get("maximum")),
        pattern=_text(spec.get("pattern")),
    )


def _value(schema: Any, text: str | None) -> Any:
    kind = _kind(schema)
    if kind == "checkbox":
        return text is not None and text.strip().lower() not in _UNCHECKED
    if text is None or not text.strip():
        return _LEFT_OUT
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text.strip()!r} is not a whole number") from None
    if kind == "number":
        return _number(text)
    if kind == "select":
        for value in schema["enum"]:
            if as_text(value) == text:
                return value
        raise ValueError(f"choose one of {', '.join(as_text(v) for v in schema['enum'])}")
    if kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            ) from None
    return text


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"{text.strip()!r} is not a number")
    return number


def _place(values: dict[str, Any], path: Path, value: Any) -> None:
    *parents, name = path
    for parent in parents:
        values = values.setdefault(parent, {})
    values[name] = value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _bound(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None
