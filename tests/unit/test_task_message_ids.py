"""A task message's id: uuid5 of its job task id, worked out only when read."""

from __future__ import annotations

import gc
import uuid

from jobservice.messages import _TASK_ID_NAMESPACE, TaskMessage, task_id_of
from jobservice.processes import heap


def _message(job_task_id: str, task_id: str = "") -> TaskMessage:
    return TaskMessage(
        job_task_id=job_task_id,
        task_classifier="c",
        task_api_version=1,
        task_data={"item": 1},
        to="queue",
        correlation_id="p:j",
        task_id=task_id,
    )


def test_the_task_id_is_uuid5_of_the_job_task_id_as_it_always_was() -> None:
    for job_task_id in ("p:j.1.2", "", "ü:ß.3.40000", "x" * 1000, "p:j with space.7"):
        assert task_id_of(job_task_id) == str(uuid.uuid5(_TASK_ID_NAMESPACE, job_task_id))
    # The id every earlier version gave this item: redeliveries across an upgrade match.
    assert task_id_of("p:j.1.2") == "1d859b5c-98ad-558b-8bc3-578baf70f4d5"


def test_a_message_works_its_id_out_when_first_read_and_keeps_a_given_one() -> None:
    message = _message("p:j.1.2")
    assert message._task_id == ""  # nothing worked out yet
    assert message.task_id == task_id_of("p:j.1.2")
    assert message.to_dict()["taskId"] == message.task_id

    given = _message("p:j.1.2", task_id="given")
    assert given.task_id == "given"
    given.task_id = "changed"
    assert given.to_dict()["taskId"] == "changed"


def test_messages_compare_by_their_fields_and_round_trip_through_their_envelope() -> None:
    message = _message("p:j.1.2")
    again = TaskMessage.from_dict(message.to_dict())
    assert again == message
    assert again != _message("p:j.1.3")
    assert "p:j.1.2" in repr(message)


def test_a_settled_heap_is_frozen_and_collects_its_young_less_often() -> None:
    before = gc.get_threshold()
    try:
        heap.settle()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
