"""Definitions and params a job can never run with are refused cheaply, saying what is allowed."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from jobservice.errors import BatchDefinitionError, JobServiceError
from jobservice.plugin import BatchPlugin, BatchWorkerServices
from jobservice.plugins.directory import DirectoryBatchPlugin
from jobservice.plugins.handlers import ChecksumItemHandler, NoopItemHandler, SleepItemHandler
from jobservice.plugins.jsonl import JsonLinesBatchPlugin
from jobservice.plugins.listing import ListBatchPlugin
from jobservice.plugins.range import MAX_ITEMS, MAX_LEAF, RangeBatchPlugin, parse_range
from jobservice.plugins.task import TaskBatchPlugin
from jobservice.settings import InvalidSettingsError, get_settings
from tests.unit.test_plugins import split


def refused(plugin: BatchPlugin, definition: str, message: str) -> None:
    """The check refuses ``definition``, and so does the split itself, both naming ``message``."""
    with pytest.raises(BatchDefinitionError, match=message):
        plugin.check_definition(definition, {})
    with pytest.raises(BatchDefinitionError, match=message):
        split(plugin, definition)


RANGE_FORM = r"START-END or START-END/LEAF"


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("10-5", "ends before it starts"),
        ("-5-5", RANGE_FORM),
        ("0-1e12", RANGE_FORM),
        ("0-10/0", "LEAF must be from 1 to 100,000"),
        ("0-10/-1", RANGE_FORM),
        ("0-10/1000001", "LEAF must be from 1 to 100,000"),
        ("0-" + "9" * 30, "at most 9,223,372,036,854,775,807"),
        ("0-" + "9" * 5000, "at most 9,223,372,036,854,775,807"),
        ("0-9223372036854775808", "at most 9,223,372,036,854,775,807"),
        ("0-1000000000000", "1,000,000,000,000 items; the most is 10,000,000,000"),
        ("\u0660-\u0665", "ASCII digits"),  # Arabic-Indic digits, which int() would take
        ("0-\uff15", "ASCII digits"),  # a fullwidth 5
        ("0-\u00b2", "ASCII digits"),  # a superscript 2: isdigit() says yes, int() says no
        ("0-10\x00", "NUL"),
        ("0-10\u00a0", RANGE_FORM),  # no-break space is not the white space around a range
        ("", RANGE_FORM),
    ],
)
def test_range_refuses_what_it_could_never_split(definition: str, message: str) -> None:
    refused(RangeBatchPlugin(), definition, message)


def test_range_keeps_every_range_a_user_could_run() -> None:
    plugin = RangeBatchPlugin()
    for definition in ("0-100000000", "5-5", " 0 - 10 / 3 ", f"0-{MAX_ITEMS}", f"0-10/{MAX_LEAF}"):
        plugin.check_definition(definition, {})
    top = 2**63 - 1
    assert parse_range(f"{top - 10}-{top}") == (top - 10, top, 10_000)
    # its sub-ranges pass the same check as the job's own definition
    for sub_range in split(plugin, "0-100000000").batches:
        plugin.check_definition(sub_range, {})


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("[1, 2", "not a valid JSON array"),
        ("[1] [2]", "not a valid JSON array"),
        ("[" * 5000 + "]" * 5000, "nested more than 64 levels"),
        ("[" * 65 + "]" * 65, "nested more than 64 levels"),
        ('[{"a": ' * 40 + "1" + "}]" * 40, "nested more than 64 levels"),
        ("[NaN]", "NaN"),
        ("[1, -Infinity]", "Infinity"),
        ("[" + "9" * 5000 + "]", "not a valid JSON array"),
        ("a,b\x00,c", "NUL"),
    ],
)
def test_list_refuses_what_it_could_never_split(definition: str, message: str) -> None:
    refused(ListBatchPlugin(), definition, message)


def test_list_keeps_nested_items_within_the_bound() -> None:
    nested = "[" * 64 + "]" * 64
    ListBatchPlugin().check_definition(nested, {})
    assert split(ListBatchPlugin(), nested).items == [json.loads(nested)[0]]


def test_jsonl_refuses_bad_slices_paths_and_files_that_are_not_regular(file_root: Path) -> None:
    (file_root / "ok.jsonl").write_text('{"a": 1}\n')
    (file_root / "folder").mkdir()
    os.mkfifo(file_root / "pipe.jsonl")
    (file_root / "loop").symlink_to(file_root / "loop")
    (file_root / "zero").symlink_to("/dev/zero")
    plugin = JsonLinesBatchPlugin()
    for definition, message in [
        ("ok.jsonl#a-b", "PATH#START-END"),
        ("ok.jsonl#5-2", "START not above END"),
        ("ok.jsonl#-5", "PATH#START-END"),
        ("ok.jsonl#0-", "PATH#START-END"),
        ("ok.jsonl#\u0660-\u0665", "ASCII digits"),
        ("ok.jsonl#0-\u00b2", "ASCII digits"),
        ("ok.jsonl#0-" + "9" * 30, "at most 9,223,372,036,854,775,807"),
        ("../outside.jsonl", "outside the configured root"),
        ("/etc/passwd", "outside the configured root"),
        ("missing.jsonl", "does not exist"),
        ("folder", "is not a regular file"),
        ("pipe.jsonl", "is not a regular file"),
        ("zero", "outside the configured root"),
        ("loop", "cannot be resolved"),
        ("a" * 5000 + ".jsonl", "cannot be resolved"),
        ("ok.jsonl\x00", "NUL"),
        ("", "names no file"),
        ("#0-10", "names no file"),
    ]:
        refused(plugin, definition, message)
    plugin.check_definition("ok.jsonl", {})
    plugin.check_definition("ok.jsonl#0-100", {})


def test_directory_refuses_bad_slices_paths_and_what_is_not_a_folder(file_root: Path) -> None:
    (file_root / "tree").mkdir()
    (file_root / "file.txt").write_text("x")
    plugin = DirectoryBatchPlugin()
    for definition, message in [
        ("../..", "outside the configured root"),
        ("missing", "does not exist"),
        ("file.txt", "is not a folder"),
        ("tree\x00", "NUL"),
        ('{"path": "tree"}', "FOLDER"),
        ('{"path": "tree", "files": [5, 2]}', "0 <= START <= END"),
        ('{"path": "tree", "files": [-1, 2]}', "0 <= START <= END"),
        ('{"path": "tree", "files": [0.5, 2]}', "whole numbers"),
        ('{"path": "tree", "files": [true, 2]}', "whole numbers"),
        ('{"path": "tree", "files": ["0", "2"]}', "whole numbers"),
        ('{"path": "tree", "files": [0, 1, 2]}', "FOLDER"),
        ('{"path": ["tree"], "files": [0, 2]}', "FOLDER"),
        ('{"path": "tree", "files": [0, 2], "x": 1}', "FOLDER"),
        ('{"path": "tree", "files": [0, ' + "9" * 30 + "]}", "at most 9,223,372,036,854,775,807"),
        ("{" * 5000, "FOLDER"),
        ('{"path": ' * 5000, "FOLDER"),
    ]:
        refused(plugin, definition, message)
    plugin.check_definition("tree", {})
    plugin.check_definition('{"path": "tree", "files": [0, 1000]}', {})


def test_task_refuses_what_is_not_a_task() -> None:
    plugin = TaskBatchPlugin()
    for definition in ["{}", "[1]", '{"taskClassifier": "c"}', "{" * 5000]:
        refused(plugin, definition, "a task definition is not valid")
    plugin.check_definition(
        '{"taskClassifier": "c", "taskApiVersion": 1, "taskData": {"x": 1}}', {}
    )


def test_a_plugin_without_a_check_accepts_every_definition() -> None:
    class Unchecked(BatchPlugin):
        def process_batch(
            self,
            services: BatchWorkerServices,
            batch_definition: str,
            task_message_type: str | None,
            task_message_params: Mapping[str, str],
        ) -> None:
            raise BatchDefinitionError("only ever found out here")

    Unchecked().check_definition("anything at all", {})


@pytest.mark.parametrize(
    "value", ["1e12", "60001", "-1", "abc", "", "nan", "inf", "1_0", "\u0665", "10 ms"]
)
def test_sleep_refuses_a_sleep_that_is_no_number_or_beyond_a_minute(value: str) -> None:
    with pytest.raises(ValueError, match=r"sleepMillis .* from 0 to 60,000"):
        SleepItemHandler().check_params({"sleepMillis": value})


@pytest.mark.parametrize("value", ["0", "10", "2.5", "60000", " 7 "])
def test_sleep_takes_milliseconds_up_to_a_minute(value: str) -> None:
    SleepItemHandler().check_params({"sleepMillis": value})
    SleepItemHandler().check_params({})


def test_handlers_that_read_no_params_accept_any() -> None:
    for handler in (NoopItemHandler(), ChecksumItemHandler()):
        handler.check_params({"sleepMillis": "1e12", "anything": "\x00"})


def test_unreadable_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        ("JOBSERVICE_API__KEYS", "not json", "JOBSERVICE_API__KEYS is not valid JSON"),
        ("JOBSERVICE_API__KEYS", '{"key": "p"}', r"JOBSERVICE_API__KEYS \(at key\): Input should"),
        ("JOBSERVICE_ENGINE__CHUNK_SIZE", "0", "JOBSERVICE_ENGINE__CHUNK_SIZE: Input should be"),
        ("JOBSERVICE_API__PORT", "port", "JOBSERVICE_API__PORT: Input should be"),
        ("JOBSERVICE_UVLOOP", "maybe", "JOBSERVICE_UVLOOP: Input should be"),
    ]
    for name, value, message in cases:
        monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        with pytest.raises(InvalidSettingsError, match=message) as raised:
            get_settings()
        assert isinstance(raised.value, JobServiceError)
        assert "\n" not in str(raised.value)
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    assert get_settings().api.keys == {}
