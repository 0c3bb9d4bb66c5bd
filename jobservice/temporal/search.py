"""The search attributes that make a job's workflows findable in the Temporal Web UI."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError

from jobservice.errors import UnavailableError

JOB_ID = SearchAttributeKey.for_keyword("JobId")
JOB_PARTITION = SearchAttributeKey.for_keyword("JobPartition")
JOB_STATUS = SearchAttributeKey.for_keyword("JobStatus")
SEARCH_ATTRIBUTES = (JOB_ID, JOB_PARTITION, JOB_STATUS)


def dev_server_search_attribute_args() -> list[str]:
    """``temporal server start-dev`` arguments that register jobservice's search attributes."""
    return [
        arg for key in SEARCH_ATTRIBUTES for arg in ("--search-attribute", f"{key.name}=Keyword")
    ]


async def ensure_search_attributes(client: Client) -> None:
    """Register the job search attributes on the namespace if they are missing."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for key in SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    except RPCError as exc:
        raise UnavailableError(
            f"the namespace {client.namespace!r} lacks the search attributes "
            f"{', '.join(missing)} and they could not be added ({exc.message}); "
            "register them as Keyword attributes"
        ) from None
