"""Framed publishing: the frames written for a message are the ones pamqp would write."""

from __future__ import annotations

import pytest
from pamqp import commands as spec
from pamqp import frame
from pamqp.body import ContentBody
from pamqp.common import FieldTable
from pamqp.header import ContentHeader

from jobservice.rabbitmq.framing import _Template


def pamqp_frames(
    channel: int, routing_key: str, body: bytes, message_id: str, headers: FieldTable | None
) -> bytes:
    properties = spec.Basic.Properties(
        delivery_mode=2, content_type="application/json", headers=headers, message_id=message_id
    )
    frames = [
        frame.marshal(spec.Basic.Publish(routing_key=routing_key, mandatory=True), channel),
        frame.marshal(ContentHeader(properties=properties, body_size=len(body)), channel),
    ]
    frames += [
        frame.marshal(ContentBody(body[i : i + 100]), channel) for i in range(0, len(body), 100)
    ]
    return b"".join(frames)


@pytest.mark.parametrize("body", [b"", b"{}", b"x" * 100, b"y" * 250])
@pytest.mark.parametrize("headers", [None, {"x-jobservice-reason": "not JSON"}])
def test_a_message_is_framed_as_pamqp_frames_it(body: bytes, headers: FieldTable | None) -> None:
    message_id = "0123456789abcdef0123456789abcdef"
    parts: list[bytes] = []

    _Template(7, "documents", headers).frames(parts, body, message_id, size=100)

    assert b"".join(parts) == pamqp_frames(7, "documents", body, message_id, headers)
