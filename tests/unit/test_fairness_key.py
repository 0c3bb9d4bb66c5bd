"""Every job's tasks carry a fairness key of the job's own, within Temporal's 64 bytes."""

from __future__ import annotations

from temporalio.common import Priority

from jobservice.jobs.ids import validate_ids
from jobservice.temporal.fairness import job_priority


def test_each_job_has_a_key_of_its_own() -> None:
    keys = {job_priority(p, j).fairness_key for p in ("a", "b") for j in ("x", "y", "a/x")}

    assert len(keys) == 6
    # The key alone: no priority or weight that would rank one job's tasks above another's
    assert job_priority("a", "x") == Priority(fairness_key="a/x")
    assert job_priority("b", "y") == Priority(fairness_key="b/y")


def test_the_longest_ids_still_make_a_key_within_temporal_s_limit() -> None:
    partition, job_id = "p" * 40, "é" * 48
    validate_ids(partition, job_id)

    key = job_priority(partition, job_id).fairness_key

    assert key is not None and len(key.encode()) <= 64
    # Too long as it is: the hex sha256 of "pp…p/éé…é", partition and job alike, cut to 64
    assert key == "21387a9f504faed58b097c1b9141a39dd2db6ea08177350cb07dc098e50b8d30"
    assert key != job_priority(partition, "é" * 47 + "e").fairness_key
