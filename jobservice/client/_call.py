"""A call to the API, described once: its request, and how its answer reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypedDict, TypeVar, cast

import httpx
from pydantic import TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from jobservice.client._errors import refusal, unreadable

T = TypeVar("T")
OK = frozenset({200})
NO_CONTENT = frozenset({204})


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request to the API, relative to its base path, and how its answer reads."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, str | int] = field(default_factory=dict)
    body: Any = None
    answers: frozenset[int] = OK
    """The statuses ``read`` takes; any other is raised as the error it stands for."""

    def outcome(self, response: httpx.Response) -> T:
        if response.status_code not in self.answers:
            raise refusal(response)
        try:
            return self.read(response)
        except ValidationError as exc:
            # An answer this call takes but cannot read: an error page is the error it is.
            raise (refusal(response) if response.is_error else unreadable(response, exc)) from None


def read_json(adapter: TypeAdapter[T]) -> Callable[[httpx.Response], T]:
    return lambda response: adapter.validate_json(response.content)


def read_nothing(_: httpx.Response) -> None:
    return None


class JobSelection(TypedDict, total=False):
    """The jobs a bulk call takes; each one given narrows them."""

    job_id_starts_with: str | None
    """Jobs whose id starts so."""
    label_exist: str | None
    """Jobs with one of these labels (a comma list)."""
    filter: str | None
    """RSQL, e.g. ``labels.team==red;status==Active``."""


class JobFilters(JobSelection, total=False):
    """The jobs a count takes: a selection, narrowed by status too."""

    status_type: str | None
    """All, NotCompleted, Completed, Inactive or NotFinished."""


class JobListQuery(JobFilters, total=False):
    """A page of the jobs a list takes."""

    sort: str | None
    """``field:asc`` or ``field:desc``; ``labels.<key>`` sorts by a label."""
    limit: int | None
    """Jobs in the page, 1 to 1000; 10 unless given."""
    offset: int | None
    """Jobs to skip."""


def query_params(query: JobSelection) -> dict[str, str | int]:
    """The query parameters (a count's and a list's hold a selection's), as the API names them."""
    values = cast(Mapping[str, str | int | None], query)
    return {to_camel(name): value for name, value in values.items() if value is not None}
