"""The dashboard's templates and the few words and shapes they share: statuses, numbers,
durations, progress and the rate chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from jobservice.jobs.job import (
    DROPPED_MEANS,
    HELD_MEANS,
    IN_FLIGHT_MEANS,
    WAITING_MEANS,
    JobView,
    waiting_items,
)
from jobservice.jobs.status import JobStatus

UNKNOWN = "\N{EN DASH}"
"""What a page shows for a number or time it does not know."""

TONES = {
    JobStatus.WAITING: "waiting",
    JobStatus.ACTIVE: "active",
    JobStatus.PAUSED: "paused",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}
"""Each status's colour class; the status word always stands beside it."""
SYMBOLS = {
    JobStatus.WAITING: "◷",
    JobStatus.ACTIVE: "▶",
    JobStatus.PAUSED: "❚❚",
    JobStatus.COMPLETED: "✓",
    JobStatus.FAILED: "✕",
    JobStatus.CANCELLED: "■",
}


def number(value: float | int | None) -> str:
    if value is None:
        return UNKNOWN
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"


def duration(seconds: float | None) -> str:
    """``2 h 05 min``, ``3 min 20 s``, ``12 s``; UNKNOWN when unknown."""
    if seconds is None:
        return UNKNOWN
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours:,} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def when(moment: datetime | int | None) -> str:
    """A time, or epoch milliseconds as the API's failures have them, in UTC."""
    if isinstance(moment, int):
        moment = datetime.fromtimestamp(moment / 1000, UTC)
    return UNKNOWN if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Progress:
    """A job's counts as the page shows them, waiting items included (Map Run's "pending")."""

    total: int
    completed: int
    failed: int
    in_flight: int
    waiting: int
    percent: float
    failed_percent: float

    @classmethod
    def of(cls, job: JobView | Counts) -> Progress:
        """The progress of a job, or of anything with its counts (a batch's)."""
        counts = job.counts if isinstance(job, JobView) else job
        done = counts.completed + counts.failed
        total = max(counts.total, done)
        waiting = waiting_items(total, done, counts.in_flight)
        return cls(
            total=total,
            completed=counts.completed,
            failed=counts.failed,
            in_flight=counts.in_flight,
            waiting=waiting,
            percent=100.0 * counts.completed / total if total else 0.0,
            failed_percent=100.0 * counts.failed / total if total else 0.0,
        )


class Counts(Protocol):
    total: int
    completed: int
    failed: int
    in_flight: int


CHART_WIDTH, CHART_HEIGHT = 300, 60


@dataclass(frozen=True)
class Chart:
    """Items per second over the last minutes, as an SVG polyline's points."""

    points: str
    peak: float
    latest: float
    samples: int

    @classmethod
    def of(cls, rates: tuple[float, ...]) -> Chart:
        peak = max(rates, default=0.0)
        step = CHART_WIDTH / max(len(rates) - 1, 1)
        scale = (CHART_HEIGHT - 4) / peak if peak else 0.0
        points = " ".join(
            f"{i * step:.1f},{CHART_HEIGHT - 2 - rate * scale:.1f}" for i, rate in enumerate(rates)
        )
        return cls(points, peak, rates[-1] if rates else 0.0, len(rates))


def controls(status: JobStatus) -> dict[str, bool]:
    """Which of the job's buttons do anything in ``status``."""
    return {
        "pause": status in (JobStatus.ACTIVE, JobStatus.WAITING),
        "resume": status is JobStatus.PAUSED,
        "cancel": not status.is_terminal,
    }


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("jobservice.web.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(number=number, duration=duration, when=when)
    globals_: dict[str, Any] = {
        "tones": TONES,
        "symbols": SYMBOLS,
        "statuses": list(JobStatus),
        "progress_of": Progress.of,
        "chart_of": Chart.of,
        "controls_of": controls,
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "IN_FLIGHT_MEANS": IN_FLIGHT_MEANS,
        "HELD_MEANS": HELD_MEANS,
        "DROPPED_MEANS": DROPPED_MEANS,
        "WAITING_MEANS": WAITING_MEANS,
    }
    environment.globals.update(globals_)
    return environment


templates = Jinja2Templates(env=_environment())
