"""Job types load from YAML, refuse broken definitions, and render tasks from parameters."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from jobservice.errors import InvalidJobError
from jobservice.jobs.definition import BATCH_WORKER_CLASSIFIER, BatchWorkerTask, JobTask
from jobservice.jobs.jobtypes import JobType, JobTypeDefinitionError, JobTypes

SHIPPED = Path(__file__).resolve().parents[2] / "jobtypes"

CHECKSUM = """\
description: Checksums every file under a folder.
parameters:
  type: object
  required: [folder]
  additionalProperties: false
  properties:
    folder: {type: string, minLength: 1}
    tolerance: {type: string, default: "0"}
configuration:
  queue: documents
task:
  taskClassifier: BatchWorker
  taskApiVersion: 1
  taskPipe: batch-worker
  targetPipe: ${configuration.queue}
  taskData:
    batchType: directory
    batchDefinition: ${parameters.folder}
    taskMessageType: default
    taskMessageParams: {}
    targetPipe: ${configuration.queue}
"""


def load_one(
    tmp_path: Path, text: str, *, name: str = "example.yaml", environ: dict[str, str] | None = None
) -> JobType:
    (tmp_path / name).write_text(textwrap.dedent(text))
    types = JobTypes.load(tmp_path, environ or {})
    return types.get(Path(name).stem)


def template(task: str, parameters: str = "{type: object}") -> str:
    """A definition with the given task template (YAML flow style) and parameters schema."""
    return f"parameters: {parameters}\nconfiguration: {{queue: q1}}\ntask: {task}\n"


def render(job_type: JobType, parameters: Any = None) -> dict[str, Any]:
    return job_type.render(partition_id="tenant-a", job_id="job-7", parameters=parameters)


# -- rendering ------------------------------------------------------------------------------


def test_the_design_example_renders_a_batch_worker_task(tmp_path: Path) -> None:
    job_type = load_one(tmp_path, CHECKSUM, name="checksum.yaml")

    task = render(job_type, {"folder": "in/2024"})

    assert job_type.id == "checksum"
    assert job_type.description == "Checksums every file under a folder."
    assert task == {
        "taskClassifier": "BatchWorker",
        "taskApiVersion": 1,
        "taskPipe": "batch-worker",
        "targetPipe": "documents",
        "taskData": {
            "batchType": "directory",
            "batchDefinition": "in/2024",
            "taskMessageType": "default",
            "taskMessageParams": {},
            "targetPipe": "documents",
        },
    }


def test_a_whole_value_reference_keeps_the_json_type(tmp_path: Path) -> None:
    job_type = load_one(
        tmp_path,
        template(
            "{n: '${parameters.n}', o: '${parameters.o}', l: ['${parameters.l}'], "
            "p: '${parameters}', id: '${jobId}', part: '${partitionId}', t: '${type}'}"
        ),
    )

    task = render(job_type, {"n": 3, "o": {"a": [1, True]}, "l": [None, 2.5]})

    assert task == {
        "n": 3,
        "o": {"a": [1, True]},
        "l": [[None, 2.5]],
        "p": {"n": 3, "o": {"a": [1, True]}, "l": [None, 2.5]},
        "id": "job-7",
        "part": "tenant-a",
        "t": "example",
    }


def test_a_reference_inside_text_is_interpolated_as_text_or_json(tmp_path: Path) -> None:
    job_type = load_one(
        tmp_path,
        template(
            "{d: '${partitionId}:${jobId} ${parameters.s}/${parameters.n}', "
            "j: 'o=${parameters.o} on ${configuration.queue}'}"
        ),
    )

    task = render(job_type, {"s": "x y", "n": 10, "o": {"k": [1, "v"]}})

    assert task == {"d": "tenant-a:job-7 x y/10", "j": 'o={"k":[1,"v"]} on q1'}


def test_a_doubled_dollar_is_a_literal_reference(tmp_path: Path) -> None:
    job_type = load_one(
        tmp_path,
        template("{whole: '$${parameters.x}', inside: 'a $${HOME} b ${jobId} $5 $'}"),
    )

    assert render(job_type, {"x": 1}) == {
        "whole": "${parameters.x}",
        "inside": "a ${HOME} b job-7 $5 $",
    }


def test_template_keys_and_non_strings_are_kept_as_written(tmp_path: Path) -> None:
    job_type = load_one(tmp_path, template("{'${jobId}': [1, 2.5, true, null]}"))

    assert render(job_type) == {"${jobId}": [1, 2.5, True, None]}


def test_schema_defaults_fill_missing_parameters_only(tmp_path: Path) -> None:
    schema = (
        "{type: object, properties: {tolerance: {type: string, default: '0'}, "
        "opts: {type: object, default: {}, properties: {depth: {type: integer, default: 3}}}}}"
    )
    job_type = load_one(
        tmp_path,
        template(
            "{t: '${parameters.tolerance}', d: '${parameters.opts.depth}', "
            "text: 'depth ${parameters.opts.depth}'}",
            schema,
        ),
    )

    assert render(job_type, {}) == {"t": "0", "d": None, "text": "depth null"}
    assert render(job_type, {"opts": {}}) == {"t": "0", "d": 3, "text": "depth 3"}
    assert render(job_type, {"tolerance": "5%", "opts": {"depth": 9}}) == {
        "t": "5%",
        "d": 9,
        "text": "depth 9",
    }


def test_an_optional_parameter_without_default_renders_as_null(tmp_path: Path) -> None:
    job_type = load_one(
        tmp_path,
        template(
            "{v: '${parameters.label}', text: 'label=${parameters.label}'}",
            "{type: object, properties: {label: {type: string}}}",
        ),
    )

    assert render(job_type, {}) == {"v": None, "text": "label=null"}
    assert render(job_type, None) == {"v": None, "text": "label=null"}


def test_rendering_does_not_share_values_with_the_caller_or_the_template(tmp_path: Path) -> None:
    job_type = load_one(tmp_path, template("{a: '${parameters.o}', b: {fixed: [1]}}"))
    parameters: dict[str, Any] = {"o": {"k": []}}

    first = render(job_type, parameters)
    first["a"]["k"].append("changed")
    first["b"]["fixed"].append(2)

    assert parameters == {"o": {"k": []}}
    assert render(job_type, {"o": {"k": []}}) == {"a": {"k": []}, "b": {"fixed": [1]}}


def test_configuration_is_overridden_by_the_environment(tmp_path: Path) -> None:
    text = "configuration: {queue: q1, other-key: x}\ntask: {q: '${configuration.queue}', " + (
        "o: '${configuration.other-key}'}\n"
    )
    environ = {
        "JOBSERVICE_JOB_TYPE_MY_TYPE_QUEUE": "q2",
        "JOBSERVICE_JOB_TYPE_MY_TYPE_OTHER_KEY": "y",
        "JOBSERVICE_JOB_TYPE_SOMEONE_ELSE_QUEUE": "wrong",
    }

    job_type = load_one(tmp_path, text, name="my-type.yaml", environ=environ)

    assert job_type.configuration == {"queue": "q2", "other-key": "y"}
    assert render(job_type) == {"q": "q2", "o": "y"}


def test_without_a_parameters_schema_a_type_takes_no_parameters(tmp_path: Path) -> None:
    job_type = load_one(tmp_path, "task: {id: '${jobId}'}\n")

    assert render(job_type) == {"id": "job-7"}
    assert render(job_type, {}) == {"id": "job-7"}
    with pytest.raises(InvalidJobError, match=r"^parameters: Additional properties"):
        render(job_type, {"x": 1})


# -- parameter validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({}, "parameters: 'folder' is a required property"),
        (None, "parameters: 'folder' is a required property"),
        ({"folder": 5}, "parameters.folder: 5 is not of type 'string'"),
        ({"folder": ""}, "parameters.folder: '' should be non-empty"),
        (
            {"folder": "a", "extra": 1},
            "parameters: Additional properties are not allowed ('extra' was unexpected)",
        ),
        (["a"], "parameters: ['a'] is not of type 'object'"),
        ("a", "parameters: 'a' is not of type 'object'"),
        (
            {"folder": "a", "tolerance": 5},
            "parameters.tolerance: 5 is not of type 'string'",
        ),
    ],
)
def test_bad_parameters_are_an_invalid_job_naming_the_field(
    tmp_path: Path, parameters: Any, message: str
) -> None:
    job_type = load_one(tmp_path, CHECKSUM)

    with pytest.raises(InvalidJobError) as caught:
        render(job_type, parameters)

    assert str(caught.value) == message


def test_several_bad_parameters_name_one_and_count_the_rest(tmp_path: Path) -> None:
    job_type = load_one(tmp_path, CHECKSUM)

    with pytest.raises(InvalidJobError) as caught:
        render(job_type, {"folder": 1, "tolerance": 2, "extra": 3})

    assert str(caught.value).endswith("(and 2 more problems)")


def test_an_item_of_a_list_is_named_by_its_index(tmp_path: Path) -> None:
    schema = "{type: object, properties: {names: {type: array, items: {type: string}}}}"
    job_type = load_one(tmp_path, template("{n: '${parameters.names}'}", schema))

    with pytest.raises(InvalidJobError, match=r"^parameters\.names\[1\]: 2 is not of type"):
        render(job_type, {"names": ["a", 2]})


# -- looking types up -----------------------------------------------------------------------


def test_an_unknown_type_lists_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "b-type.yaml").write_text(CHECKSUM)
    (tmp_path / "a_type.yml").write_text(CHECKSUM)
    types = JobTypes.load(tmp_path, {})

    with pytest.raises(InvalidJobError) as caught:
        types.get("c")

    assert types.ids() == ["a_type", "b-type"]
    assert str(caught.value) == "unknown job type 'c'; known: a_type, b-type"


def test_an_unknown_type_says_when_no_types_are_configured(tmp_path: Path) -> None:
    for types in (JobTypes.load(None), JobTypes.load(tmp_path, {})):
        with pytest.raises(InvalidJobError, match="no job types are configured"):
            types.get("checksum-folder")
        assert types.ids() == []


def test_other_files_hidden_files_and_folders_are_not_read(tmp_path: Path) -> None:
    # Given: what a mounted Kubernetes ConfigMap and an editor leave beside the definitions
    (tmp_path / "ok.yaml").write_text(CHECKSUM)
    (tmp_path / "README.md").write_text("not yaml: [")
    (tmp_path / ".hidden.yaml").write_text("not yaml: [")
    (tmp_path / "ok.yaml.swp").write_text("not yaml: [")
    (tmp_path / "..data").mkdir()
    (tmp_path / "..data" / "broken.yaml").write_text("not yaml: [")
    (tmp_path / "folder.yaml").mkdir()

    assert JobTypes.load(tmp_path, {}).ids() == ["ok"]


# -- broken definitions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "task: [unclosed\n",
            "not valid YAML: expected ',' or ']', but got '<stream end>' at line 2",
        ),
        ("task: {a: 1\n", "not valid YAML: expected ',' or '}', but got '<stream end>' at line 2"),
        ('task: "\\xZZ"\n', "not valid YAML: expected escape sequence of 2 hexadecimal numbers"),
        ("- a list\n", "a definition is a mapping"),
        ("", "a definition is a mapping"),
        ("description: x\n", "`task` is missing or not a mapping"),
        ("task: just text\n", "`task` is missing or not a mapping"),
        ("task: {}\ntaks: {}\n", "unknown keys taks; known: configuration, description"),
        ("description: [x]\ntask: {}\n", "`description` is not a string"),
        ("parameters: [x]\ntask: {}\n", "`parameters` is not a mapping"),
        (
            "parameters: {type: objekt}\ntask: {}\n",
            "`parameters` is not a valid JSON Schema: 'objekt' is not valid",
        ),
        (
            "parameters: {properties: {a: {minLength: -1}}}\ntask: {}\n",
            "(at parameters['properties']['a']['minLength'])",
        ),
        ("configuration: [x]\ntask: {}\n", "`configuration` is not a mapping"),
        ("configuration: {n: 5}\ntask: {}\n", "configuration.n is not text; quote it"),
        ("configuration: {a b: x}\ntask: {}\n", "configuration key 'a b' is not"),
        ("task: {d: 2024-01-31}\n", "date is not JSON serializable; quote dates"),
        ("task: {a: '${job}'}\n", "${job}: unknown root 'job'; known: type, partitionId"),
        ("task: {a: 'x ${jobId.x} y'}\n", "${jobId.x}: jobId is text, it has no fields"),
        ("task: {a: ['${configuration.q}']}\n", "no configuration key 'q'; known: none"),
        (
            "configuration: {q: x}\ntask: {a: '${configuration.q.r}'}\n",
            "configuration values are text, they have no fields",
        ),
        (
            "parameters: {properties: {folder: {type: string}}}\ntask: {a: '${parameters.fold}'}\n",
            "the parameters schema declares no property 'fold' in parameters",
        ),
        (
            "parameters: {properties: {o: {properties: {a: {}}}}}\n"
            "task: {a: '${parameters.o.b}'}\n",
            "declares no property 'b' in parameters.o",
        ),
        ("task: {a: '${parameters.x}'}\n", "declares no property 'x' in parameters"),
        ("task: {a: '${ jobId }'}\n", "${ jobId } is not a dotted path"),
        ("task: {a: '${jobId'}\n", "has a ${ without a closing }"),
        ("task: {a: '${a${jobId}'}\n", "has a ${ without a closing }"),
    ],
)
def test_a_broken_definition_fails_the_load_naming_file_and_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    (tmp_path / "good.yaml").write_text(CHECKSUM)
    (tmp_path / "bad.yaml").write_text(text)

    with pytest.raises(JobTypeDefinitionError) as caught:
        JobTypes.load(tmp_path, {})

    message = str(caught.value)
    assert f"{tmp_path / 'bad.yaml'}: " in message
    assert problem in message
    assert "good.yaml" not in message


def test_every_broken_file_is_named_in_one_error(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("task: [")
    (tmp_path / "two.yml").write_text("task: {a: '${nope}'}")
    (tmp_path / "bad name.yaml").write_text(CHECKSUM)
    (tmp_path / "dup.yaml").write_text(CHECKSUM)
    (tmp_path / "dup.yml").write_text(CHECKSUM)

    with pytest.raises(JobTypeDefinitionError) as caught:
        JobTypes.load(tmp_path, {})

    lines = str(caught.value).splitlines()
    assert lines[0] == "broken job type definitions:"
    assert [line.split(": ", 1)[0] for line in lines[1:]] == [
        str(tmp_path / name) for name in ("bad name.yaml", "dup.yml", "one.yaml", "two.yml")
    ]
    assert "job type id 'bad name' is not" in lines[1]
    assert "job type 'dup' is defined twice" in lines[2]


def test_a_file_that_is_not_utf8_fails_the_load(tmp_path: Path) -> None:
    (tmp_path / "latin.yaml").write_bytes("task: {a: 'café'}\n".encode("latin-1"))

    with pytest.raises(JobTypeDefinitionError, match=r"latin\.yaml: 'utf-8' codec can't decode"):
        JobTypes.load(tmp_path, {})


def test_a_missing_folder_fails_the_load(tmp_path: Path) -> None:
    with pytest.raises(JobTypeDefinitionError, match="is not a folder"):
        JobTypes.load(tmp_path / "missing", {})


# -- the shipped job types ------------------------------------------------------------------


def test_the_shipped_job_types_load() -> None:
    assert JobTypes.load(SHIPPED, {}).ids() == ["checksum-folder", "count-range"]


def test_checksum_folder_renders_a_directory_checksum_task() -> None:
    job_type = JobTypes.load(SHIPPED, {}).get("checksum-folder")

    task = JobTask.model_validate(render(job_type, {"folder": "inbox"}))

    batch = task.batch_worker_task()
    assert isinstance(task.task_data, dict)
    assert batch == BatchWorkerTask.model_validate(task.task_data)
    assert (batch.batch_type, batch.batch_definition) == ("directory", "inbox")
    assert batch.target_pipe == task.target_pipe == "local:checksum"
    assert task.task_classifier == BATCH_WORKER_CLASSIFIER
    with pytest.raises(InvalidJobError, match=r"^parameters: Additional properties .*'tolerance'"):
        render(job_type, {"folder": "inbox", "tolerance": "5"})


def test_checksum_folder_sends_files_where_the_deployment_says() -> None:
    environ = {"JOBSERVICE_JOB_TYPE_CHECKSUM_FOLDER_TARGETPIPE": "checksums"}
    job_type = JobTypes.load(SHIPPED, environ).get("checksum-folder")

    task = render(job_type, {"folder": "inbox"})

    assert task["targetPipe"] == task["taskData"]["targetPipe"] == "checksums"


def test_count_range_renders_a_range_task() -> None:
    job_type = JobTypes.load(SHIPPED, {}).get("count-range")

    task = JobTask.model_validate(render(job_type, {"items": 1000}))

    batch = task.batch_worker_task()
    assert (batch.batch_type, batch.batch_definition, batch.target_pipe) == (
        "range",
        "0-1000",
        "local:noop",
    )
    for items, message in (
        (0, "0 is less than the minimum of 1"),
        (10_000_001, "10000001 is greater than the maximum of 10000000"),
        ("10", "'10' is not of type 'integer'"),
    ):
        with pytest.raises(InvalidJobError) as caught:
            render(job_type, {"items": items})
        assert str(caught.value) == f"parameters.items: {message}"
