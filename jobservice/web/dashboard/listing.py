"""The jobs list's filters as the page's form and links carry them, made into a job query."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from urllib.parse import urlencode

from jobservice.db.query import JobQuery
from jobservice.db.rsql import check_label_key, parse_filter
from jobservice.errors import InvalidRequestError
from jobservice.jobs.status import JobStatus
from jobservice.web.dashboard.viewer import Viewer

PAGE_SIZES = (25, 50, 100)
SORTS = {
    "createTime:desc": "newest first",
    "createTime:asc": "oldest first",
    "lastUpdateTime:desc": "last updated",
    "percentageComplete:desc": "most complete",
    "percentageComplete:asc": "least complete",
    "id:asc": "id",
    "status:asc": "status",
}


@dataclass(frozen=True)
class ListFilters:
    """What the list shows: ``status`` exactly, a ``partition`` (none: all the viewer may
    see), a ``label`` key or ``key=value``, an id ``prefix``, an RSQL ``filter`` of the API's
    own, the order and the page."""

    status: str = ""
    partition: str = ""
    label: str = ""
    prefix: str = ""
    filter: str = ""
    sort: str = "createTime:desc"
    page: int = 1
    size: int = PAGE_SIZES[0]

    @classmethod
    def of(cls, params: Mapping[str, str]) -> ListFilters:
        text = {f.name: params.get(f.name, "").strip() for f in fields(cls) if f.type == "str"}
        values: dict[str, Any] = {name: value for name, value in text.items() if value}
        for name in ("page", "size"):
            if params.get(name):
                try:
                    values[name] = int(params[name])
                except ValueError:
                    raise InvalidRequestError(f"{name}: {params[name]!r} is not a number") from None
        filters = cls(**values)
        if filters.status and filters.status not in {status.value for status in JobStatus}:
            raise InvalidRequestError(f"status: {filters.status!r} is not a job status")
        if filters.page < 1:
            raise InvalidRequestError("page: pages count from 1")
        if filters.size not in PAGE_SIZES:
            raise InvalidRequestError(f"size: choose one of {', '.join(map(str, PAGE_SIZES))}")
        return filters

    @property
    def selects(self) -> bool:
        """Whether anything narrows the list (the bulk actions ask before touching all)."""
        return any((self.status, self.partition, self.label, self.prefix, self.filter))

    def rsql(self) -> str | None:
        """The filter box, the status and a ``key=value`` label, as one RSQL filter. The box
        must read on its own first: ``x),(y`` would otherwise undo the terms beside it."""
        if self.filter:
            parse_filter(self.filter)
        terms = [f"({self.filter})"] if self.filter else []
        if self.status:
            terms.append(f"status=={self.status}")
        key, has_value, value = self.label.partition("=")
        if has_value:
            check_label_key(key.strip(), "label:")  # a key of 'a<0,id' would undo the rest
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            terms.append(f'labels.{key.strip()}=="{escaped}"')
        return ";".join(terms) or None

    def query(self, viewer: Viewer, *, paged: bool = True) -> JobQuery:
        """The job query of these filters, over what ``viewer`` may see."""
        key, has_value, _ = self.label.partition("=")
        page: dict[str, Any] = (
            {"sort": self.sort, "limit": self.size, "offset": (self.page - 1) * self.size}
            if paged
            else {}
        )
        return viewer.query(
            self.partition or None,
            job_id_starts_with=self.prefix or None,
            label_exist=None if has_value or not key else key,
            filter=self.rsql(),
            **page,
        )

    def params(self, **changes: Any) -> str:
        """These filters (as changed) as a query string, defaults left out."""
        changed, default = replace(self, **changes), ListFilters()
        return urlencode(
            {
                name: value
                for name, value in asdict(changed).items()
                if value != getattr(default, name)
            }
        )
