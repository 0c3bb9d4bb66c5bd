"""Word for every running batch of a job's tree at once."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class Word(StrEnum):
    """What every batch of a tree is told."""

    PAUSE = "pause"
    CANCEL = "cancel"


class TreeWord(BaseModel):
    """The word for every running batch of a job's tree."""

    partition_id: str
    job_id: str
    word: Word
