"""What the API refuses before any endpoint sees a request: too long, too large, or unreadable.

A URL, its headers and its body are bounded so that no request can hold the service's memory
or time; percent-encoding must spell UTF-8, so that two different URLs never name the same id
(``a%FFb`` and ``a%FEb`` would both read as ``a\\ufffdb``). Every refusal is a JSON
``{"message": ...}`` that says the bound.
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_URL_BYTES = 8192
"""The longest path and query string together."""
MAX_HEADER_BYTES = 16_384
"""The most header names and values together."""
MAX_BODY_BYTES = 1_048_576
"""The largest body; a job's definition is bounded tighter by the service."""
_ESCAPES = re.compile(rb"(?:%[0-9A-Fa-f]{2})+")


class RequestGuard:
    """ASGI middleware: refuse a request past the bounds, or one whose URL is not UTF-8."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _refusal(scope)
        if refusal is not None:
            status, message = refusal
            await _answer(send, status, message)
            return
        await self.app(scope, _bounded(receive), send)


def _refusal(scope: Scope) -> tuple[int, str] | None:
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    path = raw_path.partition(b"?")[0]
    query: bytes = scope.get("query_string", b"")
    if len(path) + len(query) > MAX_URL_BYTES:
        return url_too_long(len(path) + len(query))
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    size = sum(len(name) + len(value) for name, value in headers)
    if size > MAX_HEADER_BYTES:
        return 431, f"the headers are {size:,} bytes; the most is {MAX_HEADER_BYTES:,}"
    for part, text in (("path", path), ("query string", query)):
        wrong = _not_utf8(text)
        if wrong is not None:
            return 400, (
                f"the URL's {part} has {wrong}; percent-encode the UTF-8 bytes of each character"
            )
    length = dict(headers).get(b"content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        return 413, _too_large(int(length))
    return None


def url_too_long(size: int) -> tuple[int, str]:
    """The refusal of a URL of ``size`` bytes, its path and query string together."""
    return 414, (
        f"the URL is {size:,} bytes; the most is {MAX_URL_BYTES:,}."
        " Send a shorter filter or fewer query parameters"
    )


def _not_utf8(text: bytes) -> str | None:
    """What in ``text`` does not spell UTF-8 (a run of percent escapes, or raw bytes), or None."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes that are not UTF-8"
    for escapes in _ESCAPES.finditer(text):
        try:
            unquote_to_bytes(escapes.group()).decode("utf-8")
        except UnicodeDecodeError:
            return f"{escapes.group().decode('ascii')}, which is not UTF-8"
    return None


def _too_large(size: int) -> str:
    return (
        f"the body is {size:,} bytes or more; the most is {MAX_BODY_BYTES:,}."
        " Put large inputs in a file and use the jsonl or directory batch type"
    )


def _bounded(receive: Receive) -> Receive:
    """``receive``, refusing a body (of no stated length) once it is past the bound."""
    received = 0

    async def bounded() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise HTTPException(413, _too_large(received))
        return message

    return bounded


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_ID_SEGMENTS = {b"partitions": "partition id", b"jobs": "job id"}


def encoded_slash(scope: Scope) -> str | None:
    """Why a request that found no endpoint is refused, when an id in its path holds an
    encoded ``/`` (``%2F``): the path then reads as more segments than the endpoint has, and
    the answer names the id rather than saying there is no such endpoint. None otherwise."""
    raw: bytes = scope.get("raw_path") or b""
    segments = raw.split(b"?", 1)[0].split(b"/")
    for before, segment in pairwise(segments):
        if b"%2f" in segment.lower():
            kind = _ID_SEGMENTS.get(before, "path segment")
            value = unquote_to_bytes(segment).decode(errors="replace")
            return f"the {kind} {value!r} contains '/': an id is one segment of the job's URL"
    return None
