"""The dashboard's "Submit a job" form: inputs from job types and plugins, and the job a posted
form makes, or the inputs a refused form names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import FormData

from jobservice.jobs.definition import JobDefinition, NewJob
from jobservice.jobs.jobtypes import JobTypes
from jobservice.plugins.registry import installed
from jobservice.web.dashboard.forms import (
    Choice,
    FormError,
    FormField,
    job_from_form,
    schema_fields,
    submit_form,
)

COPY = """\
description: Copies the files under a folder.
parameters:
  type: object
  required: [source, count]
  additionalProperties: false
  properties:
    source:
      type: object
      required: [path]
      properties:
        path: {type: string, title: Source folder, description: Under the file root, pattern: "^/"}
        recursive: {type: boolean, default: true}
    count: {type: integer, minimum: 1, maximum: 100, default: 10}
    ratio: {type: number, minimum: 0, maximum: 1}
    mode: {type: string, enum: [fast, careful], default: fast}
    level: {enum: [1, 2, 3]}
    tags: {type: array, items: {type: string}, default: [a]}
    options: {type: object}
task:
  taskClassifier: BatchWorker
  taskApiVersion: 1
  taskPipe: batch-worker
  targetPipe: local:noop
  taskData:
    batchType: directory
    batchDefinition: ${parameters.source.path}
    taskMessageType: default
    taskMessageParams: {mode: "${parameters.mode}", count: "${parameters.count}"}
    targetPipe: local:noop
"""

TASK_FORM = {
    "jobId": "numbers-1",
    "partition": "tenant-a",
    "name": "Numbers",
    "description": "",
    "labels": "team=search\n\nowner = ana\r\n",
    "prerequisiteJobIds": "first, second\nthird",
    "delay": "30",
    "failureTolerance": "2.5%",
    "batchType": "range",
    "batchDefinition": "0-10",
    "taskMessageType": "",
    "taskMessageParams": "size=3",
    "targetPipe": "local:noop",
}
COPY_FORM = {
    "jobId": "copy-1",
    "partition": "tenant-a",
    "type": "copy",
    "parameters.source.path": "/data/in",
    "parameters.count": " 12 ",
    "parameters.ratio": "0.5",
    "parameters.mode": "careful",
    "parameters.level": "2",
    "parameters.tags": '["x", "y"]',
    "parameters.options": "",
}


@pytest.fixture
def job_types(tmp_path: Path) -> JobTypes:
    (tmp_path / "copy.yaml").write_text(COPY)
    return JobTypes.load(tmp_path, {})


def test_a_schema_gives_an_input_of_each_kind(job_types: JobTypes) -> None:
    fields = schema_fields(job_types.get("copy").parameters_schema)

    assert fields == [
        FormField(
            "parameters.source.path",
            "Source folder",
            "text",
            required=True,
            description="Under the file root",
            pattern="^/",
        ),
        FormField("parameters.source.recursive", "recursive", "checkbox", default="true"),
        FormField(
            "parameters.count",
            "count",
            "integer",
            required=True,
            default="10",
            minimum=1,
            maximum=100,
        ),
        FormField("parameters.ratio", "ratio", "number", minimum=0, maximum=1),
        FormField(
            "parameters.mode",
            "mode",
            "select",
            default="fast",
            choices=(Choice("fast", "fast"), Choice("careful", "careful")),
        ),
        FormField(
            "parameters.level", "level", "select", choices=tuple(Choice(n, n) for n in "123")
        ),
        FormField("parameters.tags", "tags", "json", default='["a"]'),
        FormField("parameters.options", "options", "json"),
    ]


def test_an_optional_object_asks_for_nothing_and_what_no_input_holds_is_json() -> None:
    schema = {
        "type": "object",
        "properties": {
            "target": {
                "type": "object",
                "required": ["queue"],
                "properties": {"queue": {"type": "string"}},
            },
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "shared": {"$ref": "#/$defs/shared"},
        },
    }

    assert [(f.name, f.kind, f.required) for f in schema_fields(schema, prefix="p")] == [
        ("p.target.queue", "text", False),
        ("p.either", "json", False),
        ("p.shared", "json", False),
    ]
    assert schema_fields({"type": "array"}) == [FormField("parameters", "parameters", "json")]


def test_the_form_offers_what_is_installed_and_the_users_partitions(job_types: JobTypes) -> None:
    registry = installed()

    form = submit_form(registry, job_types, ["tenant-a", "tenant-b"])

    assert [c.value for c in form.batch_types] == sorted(registry.batch_plugins)
    assert "range" in [c.value for c in form.batch_types]
    assert [c.value for c in form.builders] == sorted(registry.builders)
    assert [c.value for c in form.target_pipes] == [f"local:{h}" for h in sorted(registry.handlers)]
    assert form.partitions == (Choice("tenant-a", "tenant-a"), Choice("tenant-b", "tenant-b"))
    (copy,) = form.job_types
    assert (copy.id, copy.description) == ("copy", "Copies the files under a folder.")
    assert copy.fields == tuple(schema_fields(job_types.get("copy").parameters_schema))
    inputs = {field.name: field for field in (*form.job_fields, *form.task_fields)}
    assert inputs["partition"].choices == form.partitions
    assert inputs["targetPipe"].choices == form.target_pipes
    assert inputs["batchType"].choices == form.batch_types
    assert inputs["jobId"].required and not inputs["labels"].required


def test_a_task_form_is_the_put_body_of_a_batch_worker_task(job_types: JobTypes) -> None:
    partition, job_id, job = job_from_form(TASK_FORM, job_types)

    # Then it is the job a job file of the same fields makes: its PUT body, the same digest
    expected = NewJob.from_definition(
        JobDefinition(
            name="Numbers",
            labels={"team": "search", "owner": "ana"},
            prerequisite_job_ids=["first", "second", "third"],
            delay=30,
            failure_tolerance="2.5%",
            batch_type="range",
            batch_definition="0-10",
            task_message_params={"size": "3"},
            target_pipe="local:noop",
        )
    )
    assert (partition, job_id) == ("tenant-a", "numbers-1")
    assert job.model_dump() == expected.model_dump()
    assert job.definition_hash() == expected.definition_hash()
    assert job.task is not None
    assert (job.task.task_pipe, job.task.target_pipe) == ("batch-worker", "local:noop")
    assert job.task.batch_worker_task().batch_type == "range"


def test_a_job_type_form_gives_parameters_of_the_schemas_types(job_types: JobTypes) -> None:
    # Given a multidict as the web framework posts it, the unchecked checkbox absent
    form = FormData(list(COPY_FORM.items()))

    partition, job_id, job = job_from_form(form, job_types)

    parameters = {
        "source": {"path": "/data/in", "recursive": False},
        "count": 12,
        "ratio": 0.5,
        "mode": "careful",
        "level": 2,
        "tags": ["x", "y"],
    }
    assert (partition, job_id) == ("tenant-a", "copy-1")
    assert job.model_dump() == NewJob(type="copy", parameters=parameters).model_dump()
    # Then the job type takes them: a valid form makes valid parameters
    copy = job_types.get("copy")
    task = copy.render(partition_id=partition, job_id=job_id, parameters=job.parameters)
    assert task["taskData"]["taskMessageParams"] == {"mode": "careful", "count": 12}


def test_a_checked_checkbox_is_true_and_a_whole_number_stays_whole(job_types: JobTypes) -> None:
    form = {**COPY_FORM, "parameters.source.recursive": "on", "parameters.ratio": "1"}

    _, _, job = job_from_form(form, job_types)

    assert job.parameters["source"]["recursive"] is True
    assert job.parameters["ratio"] == 1 and isinstance(job.parameters["ratio"], int)


def test_parameters_of_any_shape_are_one_json_input(tmp_path: Path) -> None:
    # Given a job type whose schema takes any parameters
    (tmp_path / "free.yaml").write_text(
        "parameters: {}\n"
        "task: {taskClassifier: Echo, taskApiVersion: 1, taskPipe: echo, taskData: {}}\n"
    )
    job_types = JobTypes.load(tmp_path, {})
    form = {"jobId": "free-1", "partition": "tenant-a", "type": "free"}

    (free,) = submit_form(installed(), job_types, ["tenant-a"]).job_types
    given = job_from_form({**form, "parameters": '{"path": "/in"}'}, job_types)[2]
    left_out = job_from_form({**form, "parameters": " "}, job_types)[2]

    assert free.fields == (FormField("parameters", "parameters", "json"),)
    assert given.parameters == {"path": "/in"}
    assert left_out.parameters == {}


@pytest.mark.parametrize(
    ("base", "changes", "message"),
    [
        (TASK_FORM, {"jobId": " "}, "jobId: required"),
        (TASK_FORM, {"jobId": "a/b"}, "jobId: the job id 'a/b' contains '/'"),
        (TASK_FORM, {"delay": "soon"}, "delay: must be a whole number of seconds"),
        (TASK_FORM, {"delay": "-5"}, "delay: must be a whole number of seconds"),
        (TASK_FORM, {"labels": "team=search\nowner"}, "labels line 2: write key=value"),
        (TASK_FORM, {"taskMessageParams": "a=1\na=2"}, "taskMessageParams line 2: 'a' is given"),
        (TASK_FORM, {"targetPipe": ""}, "targetPipe: required"),
        (TASK_FORM, {"labels": "a b=c"}, "labels: label key 'a b' may only hold letters"),
        (TASK_FORM, {"failureTolerance": "lots"}, "failureTolerance: failureTolerance 'lots' is"),
        (TASK_FORM, {"delay": str(2**31)}, "delay: Input should be less than or equal to"),
        (COPY_FORM, {"parameters.count": "many"}, "parameters.count: 'many' is not a whole number"),
        (COPY_FORM, {"parameters.ratio": "half"}, "parameters.ratio: 'half' is not a number"),
        (COPY_FORM, {"parameters.ratio": "inf"}, "parameters.ratio: 'inf' is not a number"),
        (COPY_FORM, {"parameters.mode": "slow"}, "parameters.mode: choose one of fast, careful"),
        (
            COPY_FORM,
            {"parameters.tags": "[x]"},
            "parameters.tags: not valid JSON: Expecting value at line 1, column 2",
        ),
        (COPY_FORM, {"type": "move"}, "type: unknown job type 'move'; known: copy"),
    ],
)
def test_a_refused_form_names_the_input(
    job_types: JobTypes, base: dict[str, str], changes: dict[str, str], message: str
) -> None:
    with pytest.raises(FormError) as refused:
        job_from_form({**base, **changes}, job_types)

    assert str(refused.value).startswith(message), str(refused.value)
    assert list(refused.value.problems) == [message.split(":")[0].split(" line")[0]]


def test_every_problem_of_a_form_is_named_at_once(job_types: JobTypes) -> None:
    form: dict[str, Any] = {**TASK_FORM, "jobId": "", "delay": "x", "batchType": ""}

    with pytest.raises(FormError) as refused:
        job_from_form(form, job_types)

    assert str(refused.value) == (
        "jobId: required; delay: must be a whole number of seconds; batchType: required"
    )
