"""The built-in batch plugins split as documented."""

from __future__ import annotations

import itertools
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobservice.errors import BatchDefinitionError
from jobservice.plugin import BatchPlugin
from jobservice.plugins.directory import DirectoryBatchPlugin
from jobservice.plugins.jsonl import JsonLinesBatchPlugin
from jobservice.plugins.listing import ListBatchPlugin
from jobservice.plugins.range import RangeBatchPlugin
from jobservice.settings import get_settings


class Registered:
    """What a plugin registered for one definition."""

    def __init__(self) -> None:
        self.batches: list[str] = []
        self.items: list[Any] = []
        self.invalid: list[str] = []

    def register_batch_subtask(self, batch_definition: str) -> None:
        self.batches.append(batch_definition)

    def register_item_subtask(self, item: Any) -> None:
        self.items.append(item)

    def register_invalid_item(self, message: str) -> None:
        self.invalid.append(message)


def split(plugin: BatchPlugin, definition: str) -> Registered:
    registered = Registered()
    plugin.process_batch(registered, definition, None, {})
    return registered


def leaves(plugin: BatchPlugin, definition: str) -> Iterator[Any]:
    """Every item of a definition, splitting recursively."""
    registered = split(plugin, definition)
    yield from registered.items
    for batch in registered.batches:
        yield from leaves(plugin, batch)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    os.environ["JOBSERVICE_FILE_ROOT"] = str(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    del os.environ["JOBSERVICE_FILE_ROOT"]
    get_settings.cache_clear()


def test_range_splits_into_ten_parts_until_the_leaf_size() -> None:
    plugin = RangeBatchPlugin()

    assert split(plugin, "0-1000000").batches[:2] == ["0-100000", "100000-200000"]
    assert len(split(plugin, "0-1000000").batches) == 10
    assert split(plugin, "5-8").items == [5, 6, 7]
    assert split(plugin, "0-1000/300").batches == [
        "0-300/300",
        "300-600/300",
        "600-900/300",
        "900-1000/300",
    ]
    assert sorted(leaves(plugin, "0-12345/100")) == list(range(12345))
    assert plugin.estimate_items("0-1000000") == 1_000_000
    assert split(plugin, "7-7").items == []


@pytest.mark.parametrize("definition", ["", "1-", "a-b", "10-5", "0-10/0", "-1-5"])
def test_range_refuses_what_is_not_a_range(definition: str) -> None:
    with pytest.raises(BatchDefinitionError, match="range definition"):
        split(RangeBatchPlugin(), definition)


def test_list_takes_json_lines_or_commas_and_splits_long_lists() -> None:
    plugin = ListBatchPlugin()
    ids = [f"id{n}" for n in range(2500)]

    assert split(plugin, '["a", 2, {"k": 1}]').items == ["a", 2, {"k": 1}]
    assert split(plugin, "a, b,c").items == ["a", "b", "c"]
    assert split(plugin, "a\nb, c\n").items == ["a", "b, c"]
    assert len(split(plugin, json.dumps(ids)).batches) == 3
    assert list(leaves(plugin, json.dumps(ids))) == ids
    with pytest.raises(BatchDefinitionError, match="not a valid JSON array"):
        split(plugin, "[1, 2")


def test_jsonl_takes_every_line_exactly_once_whatever_the_byte_ranges(root: Path) -> None:
    lines = [json.dumps({"n": n, "text": "é" * (n % 7)}) for n in range(500)]
    (root / "r.jsonl").write_bytes(("\n".join(lines) + "\n").encode())
    size = (root / "r.jsonl").stat().st_size
    plugin = JsonLinesBatchPlugin()
    chooser = random.Random(7)

    for _ in range(20):
        cuts = sorted({0, size, *(chooser.randrange(size) for _ in range(6))})
        items = [
            item
            for a, b in itertools.pairwise(cuts)
            for item in split(plugin, f"r.jsonl#{a}-{b}").items
        ]
        assert [item["n"] for item in items] == list(range(500))


def test_jsonl_splits_big_files_and_reports_bad_lines(root: Path) -> None:
    body = "\n".join(json.dumps({"n": n, "pad": "x" * 100}) for n in range(20_000))
    (root / "big.jsonl").write_text(body + "\n\nnot json\n")
    plugin = JsonLinesBatchPlugin()

    top = split(plugin, "big.jsonl")
    everything = Registered()
    for batch in top.batches:
        plugin.process_batch(everything, batch, None, {})

    assert len(top.batches) == 3  # 2.4 MB in leaves of at most 1 MiB
    assert [item["n"] for item in everything.items] == list(range(20_000))
    assert len(everything.invalid) == 1
    assert "of big.jsonl is not JSON" in everything.invalid[0]
    estimate = plugin.estimate_items("big.jsonl")
    assert estimate is not None and 19_000 < estimate < 21_000


def test_directory_registers_folders_as_batches_and_files_as_items(root: Path) -> None:
    (root / "t" / "sub").mkdir(parents=True)
    (root / "t" / "x.txt").write_text("x")
    (root / "t" / "sub" / "y.txt").write_text("y")
    big = root / "t" / "big"
    big.mkdir()
    for n in range(2500):
        (big / f"{n:05d}").write_text("")
    plugin = DirectoryBatchPlugin()

    top = split(plugin, "t")
    assert top.batches == ["t/big", "t/sub"]
    assert top.items == ["t/x.txt"]
    assert split(plugin, "t/big").batches[0] == '{"path": "t/big", "files": [0, 1000]}'
    assert sorted(leaves(plugin, "t")) == sorted(
        ["t/x.txt", "t/sub/y.txt", *(f"t/big/{n:05d}" for n in range(2500))]
    )


@pytest.mark.parametrize("definition", ["..", "../elsewhere", "/etc", "t/../../x"])
def test_directory_refuses_paths_outside_the_root(root: Path, definition: str) -> None:
    (root / "t").mkdir()
    with pytest.raises(BatchDefinitionError, match="outside the configured root"):
        split(DirectoryBatchPlugin(), definition)


def test_directory_refuses_missing_folders_and_files(root: Path) -> None:
    (root / "f").write_text("")
    with pytest.raises(BatchDefinitionError, match="does not exist"):
        split(DirectoryBatchPlugin(), "missing")
    with pytest.raises(BatchDefinitionError, match="not a folder"):
        split(DirectoryBatchPlugin(), "f")
