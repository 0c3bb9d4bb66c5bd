"""``jobservice status`` reads in an 80-column terminal, whatever the size of the job."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from jobservice.cli.render import show_job
from jobservice.jobs.job import JobCounts, JobView
from jobservice.jobs.status import JobStatus


def big_job() -> JobView:
    return JobView(
        id="reindex-2026-12-06",
        partition="default",
        name="nightly",
        status=JobStatus.ACTIVE,
        counts=JobCounts(total=3_000_000_000, completed=1_486_595_123, failed=486_595, in_flight=8),
        percentage_complete=49.57,
        splitting_complete=False,
        items_per_second=4357.4,
        eta_seconds=345_678.0,
        create_time=datetime(2026, 12, 6, tzinfo=UTC),
    )


def rendered(job: JobView, width: int = 80) -> list[str]:
    out = io.StringIO()
    show_job(Console(file=out, width=width, color_system=None), job)
    return out.getvalue().splitlines()


def test_status_keeps_each_count_on_the_line_of_its_name_at_80_columns() -> None:
    lines = rendered(big_job())

    assert all(len(line) <= 80 for line in lines), lines
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert "1,487,081,718 / 3,000,000,000+" in by_name["items"]
    assert "1,486,595,123" in by_name["completed"] and "failed   486,595" in by_name["completed"]
    # In flight is what handlers and queues have now; the rest of what is to do is waiting
    assert by_name["in"].split() == ["in", "flight", "8", "waiting", "1,512,918,274"]
    assert "4,357 items/s" in by_name["rate"] and "ETA" in by_name["rate"]


def test_status_says_what_a_paused_job_holds_and_what_an_ended_one_dropped() -> None:
    paused = big_job().model_copy(
        update={"status": JobStatus.PAUSED, "held_messages": 1_234_567_890}
    )
    cancelled = big_job().model_copy(
        update={"status": JobStatus.CANCELLED, "dropped_messages": 2_000_000_000}
    )

    held_lines, dropped_lines = rendered(paused), rendered(cancelled)

    assert all(len(line) <= 80 for line in held_lines + dropped_lines)
    assert "  held       1,234,567,890 results, for their 'to' queue at resume" in held_lines
    assert "  dropped    2,000,000,000 results not passed on: the job ended" in dropped_lines
    assert not any(
        line.startswith("  held") or line.startswith("  dropped") for line in rendered(big_job())
    )
