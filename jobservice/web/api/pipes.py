"""The endpoints of target pipes, under ``/job-service/v1/pipes``: a pipe's limit, shared by
every job that sends to it, and its rate. A pipe is every partition's, so changing its limit
takes an API key that opens every partition (``*``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from starlette.convertors import Convertor, register_url_convertor

from jobservice.db.pipes import PipeState
from jobservice.errors import InvalidRequestError
from jobservice.jobs.pipes import QUEUE_NAME_BYTES
from jobservice.jobs.public import PipePatch, PipePublic
from jobservice.web.api.openapi import errors, merge_patch_of
from jobservice.web.deps import ServiceDep, settings_of
from jobservice.web.security import authenticate, check_every_partition


class _PipeConvertor(Convertor[str]):
    """A pipe's name in the path: anything to its end, slashes and line breaks too, so that
    the name's own check says what is wrong with it (a queue's name may hold a slash)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("pipe", _PipeConvertor())
router = APIRouter(prefix="/pipes", tags=["pipes"])

PipeName = Annotated[
    str,
    Path(
        description="The target pipe: a queue's name, or local:<handler>.",
        examples=["local:noop"],
        json_schema_extra={
            "minLength": 1,
            "maxLength": QUEUE_NAME_BYTES,
            "pattern": r"^[^\u0000-\u001f\u007f]+$",
        },
    ),
]


def _public(state: PipeState) -> PipePublic:
    return PipePublic(
        name=state.name,
        rate_limit=state.rate_limit,
        recent_items_per_second=round(state.recent_items_per_second, 1),
        jobs=state.jobs,
    )


@router.get("", responses=errors(401, 503))
async def list_pipes(service: ServiceDep, request: Request) -> list[PipePublic]:
    """Every target pipe with a limit or an unfinished job: its limit and its rate lately."""
    authenticate(request, settings_of(request).api)
    return [_public(state) for state in await service.pipes()]


@router.get("/{name:pipe}", responses=errors(400, 401, 503))
async def get_pipe(service: ServiceDep, request: Request, name: PipeName) -> PipePublic:
    """A target pipe: its limit and its rate lately (a pipe nothing was said of has none)."""
    authenticate(request, settings_of(request).api)
    return _public(await service.pipe(name))


@router.patch(
    "/{name:pipe}",
    responses={200: {"description": "The pipe, as it is now."}, **errors(400, 401, 403, 503)},
    openapi_extra=merge_patch_of(PipePatch),
)
async def limit_pipe(
    service: ServiceDep,
    request: Request,
    name: PipeName,
    patch: Annotated[Any, Body(include_in_schema=False)],
) -> PipePublic:
    """Limit a target pipe: ``{"rateLimit": 1000}`` items a second for every job sending to
    it together, divided fairly among them; ``{"rateLimit": null}`` takes the limit away. In
    force in the pipe's running jobs within moments, and kept in the job database."""
    check_every_partition(authenticate(request, settings_of(request).api))
    try:
        change = PipePatch.parse(patch)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    if "rate_limit" not in change.model_fields_set:  # a merge patch of nothing
        return _public(await service.pipe(name))
    return _public(await service.limit_pipe(name, change.rate_limit))
