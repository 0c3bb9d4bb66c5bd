"""Reading what a process serves on ``/metrics``, as Prometheus would."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


async def scrape(client: httpx.AsyncClient, url: str) -> str:
    """The Prometheus text at ``url``/metrics."""
    response = await client.get(f"{url}/metrics")
    assert response.status_code == 200, response.text
    return response.text


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` whose labels include ``labels``; None when there is
    none."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and labels.items() <= found.labels.items():
                return float(found.value)
    return None
