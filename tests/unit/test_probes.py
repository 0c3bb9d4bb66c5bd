"""The probes behind ``/health`` and ``/readyz`` answer in bounded time, whatever is away."""

from __future__ import annotations

from jobservice.probes import OK, temporal_state


class _Serving:
    """A stand-in for Temporal's service client that says it serves."""

    async def check_health(self, **_: object) -> bool:
        return True


class _Refusing:
    async def check_health(self, **_: object) -> bool:
        raise ConnectionError("connection refused")


async def test_temporal_state_says_why_temporal_is_unavailable() -> None:
    assert await temporal_state(_Serving()) == OK  # type: ignore[arg-type]
    assert await temporal_state(_Refusing()) == "unavailable: connection refused"  # type: ignore[arg-type]
