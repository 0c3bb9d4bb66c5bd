"""The endpoints, under ``/job-service/v1``: each one a call into the service layer."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.routing import APIRoute

from jobservice.db.query import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, STATUS_TYPES, JobQuery
from jobservice.errors import JobNotFoundError
from jobservice.jobs.definition import NewJob
from jobservice.jobs.ids import JOB_ID_LENGTH, PARTITION_ID_LENGTH, validate_ids
from jobservice.jobs.job import NUL_FREE
from jobservice.jobs.public import (
    CACHEABLE_HEADER,
    FAILURE_PAGE_MOST,
    TOTAL_COUNT_HEADER,
    Failure,
    Health,
    JobPublic,
    JobsCanceled,
    JobsDeleted,
)
from jobservice.jobs.status import JobStatus
from jobservice.jobs.steering import SteeringPatch
from jobservice.web.api.listing import Page, whole_page
from jobservice.web.api.openapi import (
    JOB_ERRORS,
    JOB_EXAMPLES,
    LABEL_KEYS,
    LABEL_KEYS_OR_ANY,
    SELECTION_ERRORS,
    SORT,
    errors,
    id_path,
    merge_patch_of,
    query_parameter,
)
from jobservice.web.deps import ServiceDep, settings_of
from jobservice.web.security import authenticate, authorize


class _KeyedRoute(APIRoute):
    """An endpoint under a partition checks the API key first: a request without a known key
    learns nothing, not even whether its body or ids would do."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if "{partition_id}" not in self.path_format:
            return handler

        async def authenticated(request: Request) -> Response:
            authenticate(request, settings_of(request).api)
            return await handler(request)

        return authenticated


router = APIRouter(route_class=_KeyedRoute)


PartitionId = Annotated[
    str, id_path("The partition: a tenant's own set of jobs.", "tenant-a", PARTITION_ID_LENGTH)
]
JobId = Annotated[str, id_path("The job's id within its partition.", "nightly", JOB_ID_LENGTH)]


async def _partition(request: Request, partition_id: PartitionId) -> str:
    validate_ids(partition_id)
    authorize(request, settings_of(request).api, partition_id)
    return partition_id


Partition = Annotated[str, Depends(_partition)]


async def _prefix_and_filter(
    partition_id: Partition,
    job_id_starts_with: Annotated[
        str | None, query_parameter("Jobs whose id starts so.", "jobIdStartsWith", pattern=NUL_FREE)
    ] = None,
    filter: Annotated[
        str | None, query_parameter("RSQL, e.g. status==Active;labels.team==red", pattern=NUL_FREE)
    ] = None,
) -> JobQuery:
    return JobQuery(partition_id=partition_id, job_id_starts_with=job_id_starts_with, filter=filter)


_LABELS_MEAN = "Jobs with any of these comma-separated label keys."


async def _selection(
    selection: Annotated[JobQuery, Depends(_prefix_and_filter)],
    label_exist: Annotated[
        str | None, query_parameter(_LABELS_MEAN, "labelExist", pattern=LABEL_KEYS)
    ] = None,
) -> JobQuery:
    """What a bulk cancel or delete acts on. An empty ``labelExist`` is refused: it would
    read as no label filter, and act on every job of the partition."""
    return replace(selection, label_exist=label_exist)


SelectionDep = Annotated[JobQuery, Depends(_selection)]


async def _counted(
    selection: Annotated[JobQuery, Depends(_prefix_and_filter)],
    label_exist: Annotated[
        str | None,
        query_parameter(f"{_LABELS_MEAN} Empty: any.", "labelExist", pattern=LABEL_KEYS_OR_ANY),
    ] = None,
    status_type: Annotated[
        str | None,
        query_parameter("Jobs of these statuses.", "statusType", enum=list(STATUS_TYPES)),
    ] = None,
) -> JobQuery:
    """What the count endpoint counts, and the list lists: an empty ``labelExist`` is no
    label filter, as the reference reads it (a client that always sends the field)."""
    return replace(selection, label_exist=label_exist or None, status_type=status_type)


CountedDep = Annotated[JobQuery, Depends(_counted)]


async def _query(
    counted: CountedDep,
    limit: Annotated[
        int,
        query_parameter(
            f"Jobs per page; 0 or less: the default, {DEFAULT_LIMIT}. A page of more than "
            f"{MAX_LIMIT:,} is sent whole, as it is read.",
        ),
    ] = DEFAULT_LIMIT,
    offset: Annotated[
        int, query_parameter("Jobs to skip; less than 0: none.", maximum=MAX_OFFSET)
    ] = 0,
    sort: Annotated[
        str | None, query_parameter("field:asc|desc, default createTime:desc", pattern=SORT)
    ] = None,
) -> Page:
    """The list's query: what the count endpoint counts, with a page and an order. A limit
    and an offset out of range are taken as the reference takes them."""
    limit = DEFAULT_LIMIT if limit <= 0 else limit
    query = replace(counted, limit=min(limit, MAX_LIMIT), offset=max(offset, 0), sort=sort)
    return Page(query, limit)


QueryDep = Annotated[Page, Depends(_query)]


@router.get("/ping", tags=["health"])
async def ping() -> dict[str, bool]:
    """The API answers, as the reference's ping does; ``/health`` says what is behind it."""
    return {"success": True}


@router.get("/health", tags=["health"], responses={503: {"model": Health}})
async def health(service: ServiceDep, response: Response) -> Health:
    """Temporal, the job database and RabbitMQ, each healthy or not."""
    probes = await service.probe()
    if not probes.healthy:
        response.status_code = 503
    return Health(
        healthy=probes.healthy,
        temporal=probes.temporal,
        database=probes.database,
        rabbitmq=probes.rabbitmq or "",
    )


@router.put(
    "/partitions/{partition_id}/jobs/{job_id}",
    status_code=201,
    responses={
        201: {
            "description": "The job is created.",
            "headers": {
                "Location": {"description": "The job's URL.", "schema": {"type": "string"}}
            },
        },
        204: {"description": "The same job was there already."},
        **errors(400, 401, 403, 503),
        403: {
            **errors(403)[403],
            "description": "The API key does not open this partition; or the job already "
            "exists with a different body (the message says which fields differ).",
        },
    },
    response_class=Response,
    tags=["jobs"],
)
async def create_job(
    service: ServiceDep,
    request: Request,
    partition_id: Partition,
    job_id: JobId,
    job: Annotated[NewJob, Body(openapi_examples=JOB_EXAMPLES)],
) -> Response:
    """Create a job: 201 with its URL in ``Location``, or 204 when the same body is sent
    again. A different body for an existing id is a 403, as the reference answers it."""
    submission = await service.submit(job_id, job, partition=partition_id)
    if not submission.created:
        return Response(status_code=204)
    # Percent-encoded as the URL was sent: a header holds ASCII, and an id may not.
    location = str(request.base_url).rstrip("/") + quote(request.url.path, safe="/")
    return Response(status_code=201, headers={"Location": location})


@router.get("/partitions/{partition_id}/jobs/{job_id}", responses=JOB_ERRORS, tags=["jobs"])
async def get_job(service: ServiceDep, partition_id: Partition, job_id: JobId) -> JobPublic:
    return JobPublic.of(await service.get(job_id, partition=partition_id))


@router.get(
    "/partitions/{partition_id}/jobs",
    responses=SELECTION_ERRORS,
    response_model=list[JobPublic],
    tags=["jobs"],
)
async def list_jobs(service: ServiceDep, page: QueryDep) -> Any:
    """A page of the partition's jobs. A page of more than 1,000 goes out as it is read from
    the job database, 1,000 jobs at a time: whole, whatever its size, in bounded memory."""
    first = await service.find(page.query)  # a bad query is refused before anything is sent
    if page.limit <= MAX_LIMIT:
        return [JobPublic.of(job) for job in first]
    return whole_page(service, page, first)


@router.get("/partitions/{partition_id}/jobStats/count", responses=SELECTION_ERRORS, tags=["jobs"])
async def count_jobs(service: ServiceDep, query: CountedDep) -> int:
    return await service.count(query)


@router.delete(
    "/partitions/{partition_id}/jobs/{job_id}",
    status_code=204,
    response_class=Response,
    responses=JOB_ERRORS,
    tags=["jobs"],
)
async def delete_job(service: ServiceDep, partition_id: Partition, job_id: JobId) -> Response:
    await service.delete(job_id, partition=partition_id)
    return Response(status_code=204)


@router.post("/partitions/{partition_id}/jobs:delete", responses=SELECTION_ERRORS, tags=["jobs"])
async def delete_jobs(service: ServiceDep, query: SelectionDep) -> JobsDeleted:
    """Delete every job the prefix, labels and filter select."""
    return JobsDeleted(jobs_deleted=await service.delete_all(query))


@router.post("/partitions/{partition_id}/jobs:cancel", responses=SELECTION_ERRORS, tags=["jobs"])
async def cancel_jobs(service: ServiceDep, query: SelectionDep) -> JobsCanceled:
    """Cancel every unfinished job the prefix, labels and filter select."""
    return JobsCanceled(jobs_canceled=await service.cancel_all(query))


@router.patch(
    "/partitions/{partition_id}/jobs/{job_id}",
    responses={200: {"description": "The job, as it is now."}, **errors(400, 401, 403, 404, 503)},
    tags=["jobs"],
    openapi_extra=merge_patch_of(SteeringPatch),
)
async def tune_job(
    service: ServiceDep,
    partition_id: Partition,
    job_id: JobId,
    patch: Annotated[dict[str, Any], Body(include_in_schema=False)],
) -> JobPublic:
    """Steer a job that has not ended without pausing it: a JSON merge patch (RFC 7386) of its
    ``rateLimit``, ``inFlightWindow``, ``failureTolerance`` and ``priority``, sent as
    ``application/merge-patch+json`` or ``application/json``; a field left out stays, null puts
    it back to its default. In force in the job's whole tree within two seconds and kept in its
    row; a value it cannot take (a negative rate, a window over the most, a tolerance it has
    already exceeded) is a 400 that says why, and changes nothing."""
    return JobPublic.of(await service.tune(job_id, patch, partition=partition_id))


def _control(verb: str) -> Any:
    async def control(service: ServiceDep, partition_id: Partition, job_id: JobId) -> Response:
        await getattr(service, verb)(job_id, partition=partition_id)
        return Response(status_code=204)

    control.__name__ = f"{verb}_job"
    control.__doc__ = {
        "pause": "Pause an Active or Waiting job.",
        "resume": "Resume a Paused job.",
        "cancel": "Cancel an unfinished job; cancelling a Cancelled job changes nothing.",
        "redrive": (
            "Run a Completed, Failed or Cancelled job again in place: exactly its failed items "
            "are sent again, from the task messages recorded when they failed, with their own "
            "task ids; a job that stopped before it reached every item first carries on from "
            "where it stopped. 400 for a job that has not finished, one with nothing to retry, "
            "and while another redrive of it is under way."
        ),
    }[verb]
    return control


for _verb in ("cancel", "pause", "resume", "redrive"):
    router.add_api_route(
        f"/partitions/{{partition_id}}/jobs/{{job_id}}/{_verb}",
        _control(_verb),
        methods=["POST"],
        status_code=204,
        response_class=Response,
        responses=JOB_ERRORS,
        tags=["jobs"],
    )


_CACHEABLE = {
    "Cache-Control": {
        "description": "How long the answer may be cached: private, max-age=<s>, the interval "
        "task messages give workers to check their job's status "
        "(statusCheckIntervalMillis).",
        "schema": {"type": "string"},
    },
    CACHEABLE_HEADER: {
        "description": "true: a worker may cache the answer for max-age, as the reference "
        "worker framework does.",
        "schema": {"type": "boolean"},
    },
}


def _cacheable(request: Request, response: Response) -> None:
    """Let workers that poll a job's status cache the answer for their check interval."""
    age = settings_of(request).api.status_cache_seconds
    response.headers["Cache-Control"] = f"private, max-age={age}"
    response.headers[CACHEABLE_HEADER] = "true"


@router.get(
    "/partitions/{partition_id}/jobs/{job_id}/status",
    responses={200: {"description": "The job's status.", "headers": _CACHEABLE}, **JOB_ERRORS},
    tags=["jobs"],
)
async def job_status(
    service: ServiceDep,
    request: Request,
    response: Response,
    partition_id: Partition,
    job_id: JobId,
) -> JobStatus:
    """The job's status as a JSON string, cacheable for workers that poll it."""
    job = await service.get(job_id, partition=partition_id)
    _cacheable(request, response)
    return job.status


@router.get(
    "/partitions/{partition_id}/jobs/{job_id}/isActive",
    responses={
        200: {"description": "Whether the job is active.", "headers": _CACHEABLE},
        **SELECTION_ERRORS,
    },
    tags=["jobs"],
)
async def job_is_active(
    service: ServiceDep,
    request: Request,
    response: Response,
    partition_id: Partition,
    job_id: JobId,
) -> bool:
    """Whether the job is Active or Waiting, as the reference answers: false for a Paused job
    (its workers stop working on it), a finished one, and one that does not exist."""
    _cacheable(request, response)
    try:
        job = await service.get(job_id, partition=partition_id)
    except JobNotFoundError:
        return False
    return job.status in (JobStatus.WAITING, JobStatus.ACTIVE)


@router.get(
    "/partitions/{partition_id}/jobs/{job_id}/failures",
    responses={
        200: {
            "description": "A page of the job's failed items, in the order they failed.",
            "headers": {
                TOTAL_COUNT_HEADER: {
                    "description": "How many failed items the job has, over all pages.",
                    "schema": {"type": "integer"},
                }
            },
        },
        **JOB_ERRORS,
    },
    tags=["jobs"],
)
async def job_failures(
    service: ServiceDep,
    response: Response,
    partition_id: Partition,
    job_id: JobId,
    limit: Annotated[
        int, query_parameter("Failures per page.", minimum=1, maximum=FAILURE_PAGE_MOST)
    ] = 100,
    offset: Annotated[int, query_parameter("Failures to skip.", minimum=0)] = 0,
    round: Annotated[
        int | None,
        query_parameter("Which round: 0 the job's first run, n its n-th redrive.", minimum=0),
    ] = None,
) -> list[Failure]:
    """Every item of the job that failed, a page at a time: each failure's ``failureId`` is
    its item's task id. Those of its last round unless ``round`` says: after a redrive, what
    failed again. The job's own ``failures`` holds only the first few."""
    page = await service.failures(
        job_id, partition=partition_id, limit=limit, offset=offset, round_=round
    )
    response.headers[TOTAL_COUNT_HEADER] = str(page.total)
    return page.failures
