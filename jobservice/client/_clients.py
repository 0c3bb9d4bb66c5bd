"""The two clients: the same endpoints, sent by ``httpx.Client`` or by ``httpx.AsyncClient``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Self, TypeVar

import httpx

from jobservice.client._call import Call
from jobservice.client._endpoints import Endpoints
from jobservice.client._errors import unreachable
from jobservice.jobs.public import Failure

T = TypeVar("T")


class JobServiceClient(Endpoints[httpx.Client]):
    """The job service's REST API, for code that waits for each answer.

    Args:
        base_url: where the API is served, e.g. ``http://127.0.0.1:8080``; the client adds
            ``/job-service/v1`` unless the URL ends with it.
        partition: the partition of every job call that does not name one; the service's
            ``default`` unless given.
        api_key: sent as ``X-API-Key`` when the API has keys.
        timeout: seconds a call may take to connect and to be answered.
        http: an ``httpx.Client`` to send with (its transport, proxies, certificates), which
            its owner closes. Without one, the client makes its own and closes it.
    """

    def _new_http(self) -> httpx.Client:
        return httpx.Client()

    def _send(self, call: Call[T]) -> T:
        request = self._request(call)
        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            raise unreachable(request, exc) from exc
        return call.outcome(response)

    def iter_job_failures(
        self,
        job_id: str,
        *,
        round: int | None = None,
        partition: str | None = None,
        page_size: int = 1_000,
    ) -> Iterator[Failure]:
        """Every failed item of the job (of its last round, unless ``round`` says), fetched a
        page at a time as they are read."""
        offset = 0
        while True:
            page = self.job_failures(
                job_id, limit=page_size, offset=offset, round=round, partition=partition
            )
            yield from page.failures
            if len(page.failures) < page_size:
                return
            offset += len(page.failures)

    def close(self) -> None:
        """Close the HTTP client, unless it was given."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncJobServiceClient(Endpoints[httpx.AsyncClient]):
    """The job service's REST API for asyncio code: every call is awaited.

    Takes the arguments of :class:`JobServiceClient`, with an ``httpx.AsyncClient`` as
    ``http``.
    """

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient()

    async def _send(self, call: Call[T]) -> T:
        request = self._request(call)
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise unreachable(request, exc) from exc
        return call.outcome(response)

    async def iter_job_failures(
        self,
        job_id: str,
        *,
        round: int | None = None,
        partition: str | None = None,
        page_size: int = 1_000,
    ) -> AsyncIterator[Failure]:
        """Every failed item of the job (of its last round, unless ``round`` says), fetched a
        page at a time as they are read."""
        offset = 0
        while True:
            page = await self.job_failures(
                job_id, limit=page_size, offset=offset, round=round, partition=partition
            )
            for failure in page.failures:
                yield failure
            if len(page.failures) < page_size:
                return
            offset += len(page.failures)

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was given."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
