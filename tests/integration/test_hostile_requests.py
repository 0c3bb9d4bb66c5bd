"""Hostile requests, on the API in-process and on the HTTP server the commands run.

Every request of the table gets a 4xx and a JSON message that says what to change; none
gets a 5xx, and after them all the service still answers a normal request on the same
connection. The API keys are set, so that authentication comes first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from jobservice.jobs.public import API_KEY_HEADER
from jobservice.processes.devserver import free_port
from jobservice.service.job_service import JobService
from jobservice.settings import ApiSettings, Settings
from jobservice.web.app import create_app
from jobservice.web.guard import MAX_BODY_BYTES
from jobservice.web.server import MAX_REQUEST_HEAD_BYTES, serve_api
from tests.conftest import unique
from tests.integration.support import API, api_client, eventually, job_body

pytestmark = pytest.mark.both_databases

KEY, KEY_OF_A = "key-of-everything", "key-of-a"
P = "/partitions/p"


def _nested(depth: int, inner: str = "name==a") -> str:
    return "(" * depth + inner + ")" * depth


def _terms(count: int, term: str = "name==a") -> str:
    return ";".join([term] * count)


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@dataclass(frozen=True)
class Hostile:
    """A request, and the status and message fragment it must get."""

    method: str
    path: str
    status: int
    message: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: {API_KEY_HEADER: KEY})

    def raw(self, content_type: str = "application/json") -> dict[str, Any]:
        return {"content-type": content_type, **self.headers}


def _put(status: int, message: str, **body: Any) -> Hostile:
    return Hostile("PUT", f"{P}/jobs/j", status, message, json=job_body(**body))


def _raw_put(status: int, message: str, content: bytes, content_type: str) -> Hostile:
    headers = {API_KEY_HEADER: KEY, "content-type": content_type}
    return Hostile("PUT", f"{P}/jobs/j", status, message, content=content, headers=headers)


def _listed(status: int, message: str, path: str = "jobs", **params: str) -> Hostile:
    return Hostile("POST" if ":" in path else "GET", f"{P}/{path}", status, message, params)


DEEP = _nested(400)
# JSON has no infinity; 1e309 is the number that reads as one.
INFINITE = json.dumps({**job_body(), "failureTolerance": 0}).replace(": 0}", ": 1e309}").encode()
TABLE: list[Hostile] = [
    # ids: invisible, reordering, not UTF-8, too long, reserved
    Hostile("PUT", "/partitions/a%E2%80%AEb/jobs/j", 400, "U+202E RIGHT-TO-LEFT OVERRIDE"),
    Hostile("GET", f"{P}/jobs/a%E2%80%8Bb", 400, "U+200B ZERO WIDTH SPACE, a format character"),
    Hostile("GET", f"{P}/jobs/a%EE%80%80", 400, "U+E000, a private-use character"),
    Hostile("GET", f"{P}/jobs/a%CD%B8", 400, "U+0378, an unassigned character"),
    Hostile("GET", f"{P}/jobs/a%FFb", 400, "the URL's path has %FF, which is not UTF-8"),
    Hostile("GET", f"{P}/jobs/a%FEb", 400, "the URL's path has %FE, which is not UTF-8"),
    Hostile("GET", f"{P}/jobs/a%C3", 400, "has %C3, which is not UTF-8"),
    Hostile("GET", "/partitions/a%C0%AF/jobs", 400, "has %C0%AF, which is not UTF-8"),
    Hostile("GET", f"{P}/jobs/a%00b", 400, "contains a control character"),
    Hostile("GET", f"{P}/jobs/a%09b", 400, "contains a control character"),
    Hostile("GET", f"{P}/jobs/a%C2%A0b", 400, "white space other than the ordinary space"),
    Hostile("GET", f"{P}/jobs/%20a", 400, "begins or ends with a space"),
    Hostile("GET", f"{P}/jobs/{'x' * 49}", 400, "is longer than 48 characters"),
    Hostile("GET", f"/partitions/{'p' * 41}/jobs", 400, "is longer than 40 characters"),
    Hostile("GET", "/partitions/a.b/jobs", 400, "contains '.': an id may not hold . , : ;"),
    Hostile("GET", f"{P}/jobs/..%2F..%2Fjobs", 400, "the job id '../../jobs' contains '/'"),
    _put(400, "prerequisite job id 'a\\u202eb' contains U+202E", prerequisiteJobIds=["a\u202eb"]),
    # filters: deep, long, many terms, injection, on every endpoint that takes one
    _listed(400, "nests deeper than 20 levels", filter=DEEP),
    _listed(400, "nests deeper than 20 levels", "jobStats/count", filter=DEEP),
    _listed(400, "nests deeper than 20 levels", "jobs:cancel", filter=DEEP),
    _listed(400, "nests deeper than 20 levels", "jobs:delete", filter=DEEP),
    _listed(400, "one more than the 100 a filter may compare", filter=_terms(101, "labels.t==r")),
    _listed(400, "one more than the 100", "jobs:delete", filter=f"id=in=({','.join('a' * 101)})"),
    _listed(400, "filter is 5,000 characters; the most is 4,096", filter="name==" + "a" * 4994),
    _listed(414, "the URL is", filter=_terms(1000, "labels.team==red")),
    _listed(400, "found 'OR'", filter="name=='x' OR 1=1 --"),
    _listed(400, "the quote at position 8 is never closed", filter="name==x';DROP TABLE job;--"),
    _listed(400, "unknown key '1'", filter="1==1"),
    _listed(400, "unknown operator '=like='", filter="name=like='%'"),
    _listed(400, "filter must not contain the NUL character", filter="name==a\x00"),
    _listed(400, "'Running' at position 1 is not a job status", filter="status==Running"),
    _listed(400, "'1e999' at position 1 is not a number", filter="percentageComplete>1e999"),
    _listed(400, "filter is empty", filter=""),
    # sort, labelExist, paging
    _listed(
        400,
        "sort: label key 'kkkkkkkkkkkkkkkkkkkk'... is longer than 255",
        sort="labels." + "k" * 256 + ":asc",
    ),
    _listed(414, "the URL is 10,0", sort="labels." + "k" * 10_000 + ":asc"),
    _listed(400, "sort 'id' needs a direction", sort="id"),
    _listed(400, "sort direction 'sideways' is unknown", sort="id:sideways"),
    _listed(400, "sort field 'name;drop table job' is unknown", sort="name;drop table job:asc"),
    _listed(400, "labelExist names 101 label keys", labelExist=",".join(["t"] * 101)),
    _listed(400, "limit: Input should be a valid integer", limit="1e3"),
    _listed(400, "offset 18446744073709551616 is over", offset=str(2**64)),
    # labels and numbers in a body
    _put(
        400,
        "a job has at most 100 labels, not 10,000",
        labels={f"k{n}": "v" for n in range(10_000)},
    ),
    _put(400, "label key 'kkkkkkkkkkkkkkkkkkkk'... is longer than 255", labels={"k" * 10_000: "v"}),
    _put(400, "the value of label 'team' is 501 characters", labels={"team": "v" * 501}),
    _put(400, "failureTolerance 1000000000000000000000000000000 is over", failureTolerance=10**30),
    _put(400, "failureTolerance 2.5 is neither a count (5) nor a percentage", failureTolerance=2.5),
    _put(400, "failureTolerance '101%' is over 100%", failureTolerance="101%"),
    _put(400, "failureTolerance [] is neither a count", failureTolerance=[]),
    _raw_put(400, "failureTolerance inf is neither a count", INFINITE, "application/json"),
    _put(400, "delay: Input should be less than or equal to 2147483647", delay=10**30),
    _put(400, "name: Input should be a valid string", name=5),
    _put(400, "labels: Input should be a valid dictionary", labels="team"),
    # bodies: none, not JSON, not an object, too big, too deep
    Hostile("PUT", f"{P}/jobs/j", 400, "the request needs a body: a JSON object"),
    _raw_put(
        400, "the body is not valid JSON: Expecting property name", b"{not json", "application/json"
    ),
    _raw_put(400, "the body must be a JSON object, not a list", b"[]", "application/json"),
    _raw_put(400, "the body must be a JSON object, not a string", b'"job"', "application/json"),
    _raw_put(400, "the body must be a JSON object, not null", b"null", "application/json"),
    _raw_put(
        400, "not text of another content type; send it as application/json", b"{}", "text/plain"
    ),
    _raw_put(
        400, "the body is not JSON text: it must be UTF-8", b'{"name": "\xff"}', "application/json"
    ),
    _raw_put(
        413, f"the most is {MAX_BODY_BYTES:,}", b" " * (MAX_BODY_BYTES + 1), "application/json"
    ),
    _raw_put(400, "the body nests too deeply to read", b"[" * 100_000, "application/json"),
    _put(400, "deeper than 32 levels, at parameters.a.a.a", parameters=_deep(40)),
    _put(400, "the job definition is", name="n" * 200_000),
    _put(400, "colour: is not a field of this request", colour="red"),
    # authentication comes before the body and the ids are read
    Hostile("PUT", f"{P}/jobs/j", 401, "an API key is required", content=b"{not", headers={}),
    Hostile("PUT", "/partitions/a.b/jobs/j", 401, "an API key is required", headers={}),
    Hostile("PUT", f"{P}/jobs/j", 401, "an API key is required", json=[], headers={}),
    Hostile("GET", f"{P}/jobs", 401, "the API key is not known", headers={API_KEY_HEADER: "x"}),
    Hostile(
        "GET", f"{P}/jobs", 401, "an API key is required", headers={"Authorization": f"Basic {KEY}"}
    ),
    Hostile(
        "GET",
        f"{P}/jobs",
        403,
        "this API key may not use partition 'p'",
        headers={API_KEY_HEADER: KEY_OF_A},
    ),
    # URL and headers past their bounds, methods and paths that do not exist
    # (httpx sends no URL over 64 KiB; a longer one is tried on the server below)
    Hostile("GET", f"{P}/jobs?filter=" + "a" * 60_000, 414, "the URL is 60,0"),
    Hostile(
        "GET",
        f"{P}/jobs",
        431,
        "the headers are",
        headers={API_KEY_HEADER: KEY, "x-pad": "a" * 20_000},
    ),
    Hostile("TRACE", f"{P}/jobs/j", 405, "Method Not Allowed"),
    Hostile("GET", "/partitions", 404, "no endpoint has the path '/job-service/v1/partitions'"),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test's settings with API keys, and a port of its own for the HTTP server."""
    api = ApiSettings(keys={KEY: ["*"], KEY_OF_A: ["a"]}, port=free_port())
    return settings.model_copy(update={"api": api})


@asynccontextmanager
async def _serving(service: JobService) -> AsyncIterator[str]:
    """The HTTP server that ``jobservice api`` runs, serving this test's API, and its address."""
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_api(service, stop))
    address = f"http://127.0.0.1:{service.settings.api.port}"
    async with httpx.AsyncClient(base_url=address) as client:

        async def listening() -> bool:
            try:
                return (await client.get(f"{API}/ping")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(listening, within=30)
    try:
        yield address
    finally:
        stop.set()
        await serving


@pytest.fixture
async def served(service: JobService) -> AsyncIterator[str]:
    async with _serving(service) as address:
        yield address


@pytest.fixture(params=["in-process", "over-http"])
async def http(
    request: pytest.FixtureRequest, service: JobService
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API in this process, or of the HTTP server."""
    if request.param == "in-process":
        async with api_client(create_app(service)) as client:
            yield client
        return
    async with (
        _serving(service) as address,
        httpx.AsyncClient(base_url=address, timeout=30) as client,
    ):
        yield client


async def _send(client: httpx.AsyncClient, case: Hostile) -> httpx.Response:
    return await client.request(
        case.method,
        f"{API}{case.path}",
        params=case.params or None,
        json=case.json,
        content=case.content,
        headers=case.headers,
    )


async def test_every_hostile_request_gets_a_4xx_saying_what_to_change(
    http: httpx.AsyncClient,
) -> None:
    wrong = []
    for case in TABLE:
        response = await _send(http, case)
        body = response.json() if "json" in response.headers.get("content-type", "") else None
        message = body.get("message", "") if isinstance(body, dict) else ""
        if response.status_code != case.status or case.message not in message:
            wrong.append(
                f"{case.method} {case.path[:80]} {case.params}: {response.status_code} "
                f"{response.text[:300]}"
            )
    assert not wrong, "\n".join(wrong)

    # Then the service still answers normal requests, on the same client
    keyed = {API_KEY_HEADER: KEY}
    job_id = unique("after")
    created = await http.put(f"{API}{P}/jobs/{job_id}", json=job_body(), headers=keyed)
    assert created.status_code == 201, created.text
    listed = await http.get(f"{API}{P}/jobs", params={"filter": f"id=={job_id}"}, headers=keyed)
    assert listed.status_code == 200, listed.text
    assert [job["id"] for job in listed.json()] == [job_id]
    assert (await http.get(f"{API}{P}/jobs/{job_id}/status", headers=keyed)).json() == "Waiting"


async def _exchange(address: str, request: bytes) -> tuple[bytes, bytes]:
    """The status line and the body the server answers ``request`` with, on a connection."""
    host, port = address.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return head.split(b"\r\n")[0], body


@pytest.mark.parametrize(
    "request_line",
    [
        # A request line still unfinished past the bound (sent no further: the server stops
        # reading there, and what it has not read would reset the connection)
        b"GET /" + b"a" * MAX_REQUEST_HEAD_BYTES,
        b"GET /job-service/v1/partitions/\xff/jobs",
        b"GET /job-service/v1/partitions/p jobs",
        b"HELLO",
    ],
)
async def test_a_request_the_server_cannot_read_is_a_json_400(
    served: str, request_line: bytes
) -> None:
    complete = b" HTTP/1.1\r\nHost: api\r\n\r\n" if len(request_line) < 1000 else b""
    status, body = await _exchange(served, request_line + complete)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert "a URL may be 8,192 bytes and the headers 16,384" in json.loads(body)["message"]

    ping = await _exchange(
        served, f"GET {API}/ping HTTP/1.1\r\nHost: api\r\n".encode() + b"Connection: close\r\n\r\n"
    )
    assert ping == (b"HTTP/1.1 200 OK", b'{"success":true}')


async def test_a_url_of_119_kb_is_a_json_414_from_the_api(served: str) -> None:
    target = f"{API}{P}/jobs?filter=".encode() + b"a" * 119_000
    status, body = await _exchange(
        served,
        b"GET " + target + f" HTTP/1.1\r\nHost: api\r\n{API_KEY_HEADER}: {KEY}\r\n\r\n".encode(),
    )
    assert status.startswith(b"HTTP/1.1 414 ")
    assert json.loads(body)["message"].startswith("the URL is 119,0")
