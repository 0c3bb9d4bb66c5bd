"""The endpoints, under ``/job-service/v1``: each one a call into the service layer."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from sqlalchemy import text

from jobservice.api.schemas import Health, JobPublic, JobsCanceled, JobsDeleted, Message
from jobservice.api.security import authorize
from jobservice.broker import Broker
from jobservice.db.query import DEFAULT_LIMIT, JobQuery
from jobservice.errors import JobNotFoundError
from jobservice.models import JobStatus, NewJob
from jobservice.service import JobService, validate_ids
from jobservice.settings import Settings

router = APIRouter()
_HEALTH_TIMEOUT = timedelta(seconds=3)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Message, "description": description}
    for code, description in {
        400: "The request is not valid; the message says why.",
        401: "An API key is required.",
        403: "The API key does not open this partition.",
        404: "No such job in this partition.",
        503: "Temporal or the job database cannot be reached.",
    }.items()
}


def _service(request: Request) -> JobService:
    service: JobService = request.app.state.service
    return service


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ServiceDep = Annotated[JobService, Depends(_service)]
PartitionId = Annotated[str, Path(description="The partition: a tenant's own set of jobs.")]
JobId = Annotated[str, Path(description="The job's id within its partition.")]


def _partition(request: Request, partition_id: PartitionId) -> str:
    validate_ids(partition_id)
    authorize(request, _settings(request).api, partition_id)
    return partition_id


Partition = Annotated[str, Depends(_partition)]


def _selection(
    partition_id: Partition,
    job_id_starts_with: Annotated[str | None, Query(alias="jobIdStartsWith")] = None,
    label_exist: Annotated[str | None, Query(alias="labelExist")] = None,
    filter: Annotated[str | None, Query(description="RSQL")] = None,
) -> JobQuery:
    return JobQuery(
        partition_id=partition_id,
        job_id_starts_with=job_id_starts_with,
        label_exist=label_exist,
        filter=filter,
    )


SelectionDep = Annotated[JobQuery, Depends(_selection)]


def _query(
    selection: SelectionDep,
    status_type: Annotated[str | None, Query(alias="statusType")] = None,
    limit: Annotated[int, Query(description="Jobs per page, 1 to 1000.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(description="Jobs to skip.")] = 0,
    sort: Annotated[str | None, Query(description="field:asc|desc")] = None,
) -> JobQuery:
    """The list's query: the bulk endpoints' selection, with a status type, a page and an order."""
    return replace(selection, status_type=status_type, limit=limit, offset=offset, sort=sort)


QueryDep = Annotated[JobQuery, Depends(_query)]


@router.get("/ping", tags=["health"])
async def ping() -> dict[str, str]:
    return {"message": "pong"}


@router.get("/health", tags=["health"], responses={503: {"model": Health}})
async def health(service: ServiceDep, response: Response) -> Health:
    """Temporal, the job database and RabbitMQ, each healthy or not."""
    temporal = database = rabbitmq = "ok"
    try:
        await service.client.service_client.check_health(timeout=_HEALTH_TIMEOUT)
    except Exception as exc:
        temporal = f"unavailable: {exc}"
    try:
        await asyncio.to_thread(_select_one, service)
    except Exception as exc:
        database = f"unavailable: {exc}"
    broker = Broker(service.settings.rabbitmq)
    try:
        await broker.connection()
    except Exception as exc:
        rabbitmq = f"unavailable: {exc}"
    finally:
        await broker.close()
    healthy = temporal == database == "ok"
    if not healthy:
        response.status_code = 503
    return Health(healthy=healthy, temporal=temporal, database=database, rabbitmq=rabbitmq)


def _select_one(service: JobService) -> None:
    with service.store.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


@router.put(
    "/partitions/{partition_id}/jobs/{job_id}",
    status_code=201,
    responses={
        204: {"description": "The same job was there already."},
        409: {"model": Message, "description": "The id exists with a different body."},
        **_ERRORS,
    },
    response_class=Response,
    tags=["jobs"],
)
async def create_job(
    service: ServiceDep,
    partition_id: Partition,
    job_id: JobId,
    job: Annotated[NewJob, Body()],
) -> Response:
    """Create a job: 201, or 204 when the same body is sent again. A different body for an
    existing id is a 409 (the reference system answers 403 there)."""
    submission = await service.submit(job_id, job, partition=partition_id)
    return Response(status_code=201 if submission.created else 204)


@router.get("/partitions/{partition_id}/jobs/{job_id}", responses=_ERRORS, tags=["jobs"])
async def get_job(service: ServiceDep, partition_id: Partition, job_id: JobId) -> JobPublic:
    return JobPublic.of(await service.get(job_id, partition=partition_id))


@router.get("/partitions/{partition_id}/jobs", responses=_ERRORS, tags=["jobs"])
async def list_jobs(service: ServiceDep, query: QueryDep) -> list[JobPublic]:
    return [JobPublic.of(job) for job in await service.find(query)]


@router.get("/partitions/{partition_id}/jobStats/count", responses=_ERRORS, tags=["jobs"])
async def count_jobs(service: ServiceDep, query: QueryDep) -> int:
    return await service.count(query)


@router.delete(
    "/partitions/{partition_id}/jobs/{job_id}",
    status_code=204,
    response_class=Response,
    responses=_ERRORS,
    tags=["jobs"],
)
async def delete_job(service: ServiceDep, partition_id: Partition, job_id: JobId) -> Response:
    await service.delete(job_id, partition=partition_id)
    return Response(status_code=204)


@router.post("/partitions/{partition_id}/jobs:delete", responses=_ERRORS, tags=["jobs"])
async def delete_jobs(service: ServiceDep, query: SelectionDep) -> JobsDeleted:
    """Delete every job the prefix, labels and filter select."""
    return JobsDeleted(jobs_deleted=await service.delete_all(query))


@router.post("/partitions/{partition_id}/jobs:cancel", responses=_ERRORS, tags=["jobs"])
async def cancel_jobs(service: ServiceDep, query: SelectionDep) -> JobsCanceled:
    """Cancel every unfinished job the prefix, labels and filter select."""
    return JobsCanceled(jobs_canceled=await service.cancel_all(query))


def _control(verb: str) -> Any:
    async def control(service: ServiceDep, partition_id: Partition, job_id: JobId) -> Response:
        await getattr(service, verb)(job_id, partition=partition_id)
        return Response(status_code=204)

    control.__name__ = f"{verb}_job"
    control.__doc__ = {
        "pause": "Pause an Active or Waiting job.",
        "resume": "Resume a Paused job.",
        "cancel": "Cancel an unfinished job; cancelling a Cancelled job changes nothing.",
    }[verb]
    return control


for _verb in ("cancel", "pause", "resume"):
    router.add_api_route(
        f"/partitions/{{partition_id}}/jobs/{{job_id}}/{_verb}",
        _control(_verb),
        methods=["POST"],
        status_code=204,
        response_class=Response,
        responses=_ERRORS,
        tags=["jobs"],
    )


@router.get("/partitions/{partition_id}/jobs/{job_id}/status", responses=_ERRORS, tags=["jobs"])
async def job_status(
    service: ServiceDep, request: Request, partition_id: Partition, job_id: JobId
) -> Response:
    """The job's status as a JSON string, cacheable for workers that poll it."""
    job = await service.get(job_id, partition=partition_id)
    age = _settings(request).api.status_cache_seconds
    return Response(
        content=f'"{job.status.value}"',
        media_type="application/json",
        headers={"Cache-Control": f"private, max-age={age}"},
    )


@router.get("/partitions/{partition_id}/jobs/{job_id}/isActive", tags=["jobs"])
async def job_is_active(service: ServiceDep, partition_id: Partition, job_id: JobId) -> bool:
    """Whether the job is unfinished; false for a job that does not exist."""
    try:
        job = await service.get(job_id, partition=partition_id)
    except JobNotFoundError:
        return False
    return job.status in (JobStatus.WAITING, JobStatus.ACTIVE, JobStatus.PAUSED)
