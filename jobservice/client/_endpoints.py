"""Each endpoint once, as a method that returns its :class:`Call`.

:class:`Endpoint` makes such a method one of both clients, which send the call and return what
it reads, waiting (:class:`JobServiceClient`) or awaitable (:class:`AsyncJobServiceClient`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import (
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Self,
    TypeVar,
    Unpack,
    overload,
)
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from jobservice.client._call import (
    NO_CONTENT,
    Call,
    JobFilters,
    JobListQuery,
    JobSelection,
    query_params,
    read_json,
    read_nothing,
)
from jobservice.jobs.definition import JobDefinition, NewJob
from jobservice.jobs.public import API_BASE_PATH as BASE_PATH
from jobservice.jobs.public import (
    API_KEY_HEADER,
    TOTAL_COUNT_HEADER,
    Failure,
    FailurePage,
    Health,
    JobPublic,
    JobsCanceled,
    JobsDeleted,
    PipePublic,
)
from jobservice.jobs.status import DEFAULT_PARTITION, JobStatus
from jobservice.jobs.steering import SteeringPatch

T = TypeVar("T")
P = ParamSpec("P")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)

DEFAULT_TIMEOUT = 30.0

# The server's models are the wire format, read as they are. JobPublic and its failures ignore
# fields they do not know, but its nested JobCounts forbids them (it is a request model too), so
# a client is as old as the server at most in that.
_JOB = TypeAdapter(JobPublic)
_JOBS = TypeAdapter(list[JobPublic])
_COUNT = TypeAdapter(int)
_STATUS = TypeAdapter(JobStatus)
_ACTIVE = TypeAdapter(bool)
_HEALTH = TypeAdapter(Health)
_DELETED = TypeAdapter(JobsDeleted)
_CANCELED = TypeAdapter(JobsCanceled)
_FAILURES = TypeAdapter(list[Failure])
_PIPE = TypeAdapter(PipePublic)
_PIPES = TypeAdapter(list[PipePublic])


class Endpoint(Generic[P, T]):
    """An endpoint as a client method: the call its arguments make, sent by the client."""

    def __init__(self, build: Callable[Concatenate[Endpoints[Any], P], Call[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__
        # help() and notebooks show the method's own parameters, without the call it makes.
        signature = inspect.signature(build)
        self._signature = signature.replace(
            parameters=list(signature.parameters.values())[1:],
            return_annotation=inspect.Signature.empty,
        )

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, client: Endpoints[httpx.Client], owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(
        self, client: Endpoints[httpx.AsyncClient], owner: type[Any]
    ) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, client: Endpoints[Any] | None, owner: type[Any]) -> Any:
        if client is None:
            return self
        build = self._build

        def send(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._send(build(client, *args, **kwargs))

        send.__name__ = build.__name__
        send.__doc__ = build.__doc__
        send.__signature__ = self._signature  # type: ignore[attr-defined]
        return send


class Endpoints(Generic[H]):
    """Every endpoint of ``/job-service/v1``; a subclass sends the calls with its HTTP client.

    A job call goes to the client's partition unless it names another with ``partition``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        partition: str = DEFAULT_PARTITION,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        http: H | None = None,
    ) -> None:
        # Either the server's root or the API's own URL (``api_url`` of a served API).
        self.base_url = base_url.rstrip("/").removesuffix(BASE_PATH)
        self.partition = partition
        self._headers = {API_KEY_HEADER: api_key} if api_key else {}
        self._timeout = timeout
        self._owns_http = http is None
        self._http: H = self._new_http() if http is None else http

    def _new_http(self) -> H:
        raise NotImplementedError

    def _send(self, call: Call[Any]) -> Any:
        raise NotImplementedError

    def _request(self, call: Call[Any]) -> httpx.Request:
        return self._http.build_request(
            call.method,
            f"{self.base_url}{BASE_PATH}{call.path}",
            params=call.params,
            json=call.body,
            headers=self._headers,
            timeout=self._timeout,
        )

    def _path(self, partition: str | None, path: str) -> str:
        partition = self.partition if partition is None else partition
        return f"/partitions/{quote(partition, safe='')}/{path}"

    def _job(self, job_id: str, partition: str | None, action: str = "") -> str:
        return self._path(partition, f"jobs/{quote(job_id, safe='')}{action}")

    @Endpoint
    def create_job(
        self, job_id: str, job: NewJob | JobDefinition, *, partition: str | None = None
    ) -> Call[bool]:
        """Create a job: True; False when the same job was there already.

        Raises:
            ConflictError: the id exists with a different job.
            BadRequestError: the job or its id is not valid; the message says why.
        """
        if isinstance(job, JobDefinition):
            job = NewJob.from_definition(job)
        return Call(
            "PUT",
            self._job(job_id, partition),
            lambda response: response.status_code == 201,
            body=job.model_dump(mode="json", by_alias=True),
            answers=frozenset({201, 204}),
        )

    @Endpoint
    def get_job(self, job_id: str, *, partition: str | None = None) -> Call[JobPublic]:
        """The job: its status, counts, failures and labels.

        Raises:
            NotFoundError: no such job in the partition.
        """
        return Call("GET", self._job(job_id, partition), read_json(_JOB))

    @Endpoint
    def list_jobs(
        self, *, partition: str | None = None, **query: Unpack[JobListQuery]
    ) -> Call[list[JobPublic]]:
        """A page of jobs: 10 unless ``limit`` says, newest first unless ``sort`` says."""
        return Call(
            "GET", self._path(partition, "jobs"), read_json(_JOBS), params=query_params(query)
        )

    @Endpoint
    def count_jobs(
        self, *, partition: str | None = None, **filters: Unpack[JobFilters]
    ) -> Call[int]:
        """How many jobs the list's filters select, over all its pages."""
        path = self._path(partition, "jobStats/count")
        return Call("GET", path, read_json(_COUNT), params=query_params(filters))

    @Endpoint
    def delete_job(self, job_id: str, *, partition: str | None = None) -> Call[None]:
        """Delete a job, stopping it first if it runs.

        Raises:
            NotFoundError: no such job in the partition.
        """
        return Call("DELETE", self._job(job_id, partition), read_nothing, answers=NO_CONTENT)

    @Endpoint
    def delete_jobs(
        self, *, partition: str | None = None, **selection: Unpack[JobSelection]
    ) -> Call[int]:
        """Delete every job the selection holds (with none, every job of the partition);
        how many were deleted."""
        path = self._path(partition, "jobs:delete")
        return Call("POST", path, _jobs_deleted, params=query_params(selection))

    @Endpoint
    def cancel_jobs(
        self, *, partition: str | None = None, **selection: Unpack[JobSelection]
    ) -> Call[int]:
        """Cancel every unfinished job the selection holds (with none, all of the
        partition's); how many were cancelled."""
        path = self._path(partition, "jobs:cancel")
        return Call("POST", path, _jobs_canceled, params=query_params(selection))

    @Endpoint
    def tune_job(
        self,
        job_id: str,
        changes: SteeringPatch | Mapping[str, Any],
        *,
        partition: str | None = None,
    ) -> Call[JobPublic]:
        """Steer a job that has not ended, without pausing it: ``changes`` is a JSON merge
        patch of its ``rateLimit``, ``inFlightWindow``, ``failureTolerance`` and ``priority``
        (None puts one back to its default), e.g. ``{"rateLimit": 500}``. In force in the
        job's whole tree within two seconds. Returns the job as it is now.

        Raises:
            BadRequestError: a value the job cannot take (a negative rate, a tolerance it has
                already exceeded), or it has ended; the message says why.
        """
        body = changes.wire() if isinstance(changes, SteeringPatch) else dict(changes)
        return Call("PATCH", self._job(job_id, partition), read_json(_JOB), body=body)

    @Endpoint
    def list_pipes(self) -> Call[list[PipePublic]]:
        """Every target pipe with a limit or an unfinished job: its limit, its rate lately
        (its Active jobs together) and its unfinished jobs."""
        return Call("GET", "/pipes", read_json(_PIPES))

    @Endpoint
    def get_pipe(self, name: str) -> Call[PipePublic]:
        """One target pipe (a queue's name, or ``local:<handler>``): its limit and rate."""
        return Call("GET", f"/pipes/{quote(name, safe=':')}", read_json(_PIPE))

    @Endpoint
    def limit_pipe(self, name: str, rate_limit: float | None) -> Call[PipePublic]:
        """Limit a target pipe to ``rate_limit`` items a second for every job sending to it
        together, shared fairly among them (None: no limit); in force in its running jobs
        within moments. Returns the pipe as it is now.

        Raises:
            BadRequestError: a limit that is not a rate; the message says why.
            ForbiddenError: the API key does not open every partition.
        """
        path = f"/pipes/{quote(name, safe=':')}"
        return Call("PATCH", path, read_json(_PIPE), body={"rateLimit": rate_limit})

    @Endpoint
    def pause_job(self, job_id: str, *, partition: str | None = None) -> Call[None]:
        """Pause an Active or Waiting job; pausing a Paused job changes nothing.

        Raises:
            BadRequestError: the job has finished; the message names its status.
        """
        return self._control(job_id, partition, "pause")

    @Endpoint
    def resume_job(self, job_id: str, *, partition: str | None = None) -> Call[None]:
        """Resume a Paused job.

        Raises:
            BadRequestError: the job is not Paused; the message names its status.
        """
        return self._control(job_id, partition, "resume")

    @Endpoint
    def cancel_job(self, job_id: str, *, partition: str | None = None) -> Call[None]:
        """Cancel an unfinished job; cancelling a Cancelled job changes nothing.

        Raises:
            BadRequestError: the job has Completed or Failed.
        """
        return self._control(job_id, partition, "cancel")

    @Endpoint
    def redrive_job(self, job_id: str, *, partition: str | None = None) -> Call[None]:
        """Run a Completed, Failed or Cancelled job again in place, sending exactly its failed
        items once more, after the items it never reached if it stopped short (``redriveCount``
        on the job says how often).

        Raises:
            BadRequestError: the job has not finished, has nothing to retry, or is being
                redriven already; the message says which.
        """
        return self._control(job_id, partition, "redrive")

    def _control(self, job_id: str, partition: str | None, verb: str) -> Call[None]:
        return Call(
            "POST", self._job(job_id, partition, f"/{verb}"), read_nothing, answers=NO_CONTENT
        )

    @Endpoint
    def job_status(self, job_id: str, *, partition: str | None = None) -> Call[JobStatus]:
        """The job's status alone."""
        return Call("GET", self._job(job_id, partition, "/status"), read_json(_STATUS))

    @Endpoint
    def job_failures(
        self,
        job_id: str,
        *,
        limit: int = 100,
        offset: int = 0,
        round: int | None = None,
        partition: str | None = None,
    ) -> Call[FailurePage]:
        """A page of the job's failed items, in the order they failed, and how many it has in
        all (``total``): those of its last round, unless ``round`` says (0: its first run,
        n: its n-th redrive). :meth:`iter_job_failures` goes through every one.

        Raises:
            NotFoundError: no such job in the partition.
        """
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if round is not None:
            params["round"] = round
        return Call("GET", self._job(job_id, partition, "/failures"), _failure_page, params=params)

    @Endpoint
    def job_is_active(self, job_id: str, *, partition: str | None = None) -> Call[bool]:
        """Whether the job is Waiting, Active or Paused; False for a job that does not exist."""
        return Call("GET", self._job(job_id, partition, "/isActive"), read_json(_ACTIVE))

    @Endpoint
    def ping(self) -> Call[None]:
        """Return when the API answers; raise when it does not."""
        return Call("GET", "/ping", read_nothing)

    @Endpoint
    def health(self) -> Call[Health]:
        """Temporal, the job database and RabbitMQ, each healthy or not.

        An unhealthy service is a :class:`Health` with ``healthy`` False, not an error.
        """
        # The API answers 503 with the same body when Temporal or the database is down.
        return Call("GET", "/health", read_json(_HEALTH), answers=frozenset({200, 503}))


def _jobs_deleted(response: httpx.Response) -> int:
    return _DELETED.validate_json(response.content).jobs_deleted


def _jobs_canceled(response: httpx.Response) -> int:
    return _CANCELED.validate_json(response.content).jobs_canceled


def _failure_page(response: httpx.Response) -> FailurePage:
    return FailurePage(
        total=int(response.headers.get(TOTAL_COUNT_HEADER, 0)),
        failures=_FAILURES.validate_json(response.content),
    )
