"""A worker on a namespace without the job search attributes registers them."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

from jobservice.processes.devserver import DevServer
from jobservice.settings import TemporalSettings, get_settings
from jobservice.temporal.connection import connect
from jobservice.temporal.search import SEARCH_ATTRIBUTES, ensure_search_attributes


async def test_missing_search_attributes_are_registered_once() -> None:
    names = {key.name for key in SEARCH_ATTRIBUTES}
    server = DevServer(
        binary=get_settings().dev.temporal_binary(), register_search_attributes=False
    )
    async with server:
        client = await connect(TemporalSettings(address=server.address))
        request = ListSearchAttributesRequest(namespace="default")
        before = await client.operator_service.list_search_attributes(request)

        await ensure_search_attributes(client)
        await ensure_search_attributes(client)

        after = await client.operator_service.list_search_attributes(request)
    assert names.isdisjoint(before.custom_attributes)
    assert names <= set(after.custom_attributes)
