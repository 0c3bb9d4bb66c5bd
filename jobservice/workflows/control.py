"""Whether a batch may start work, and what its children must be told to match it.

A batch is paused and resumed by signals and cancelled by Temporal; its children hear of it
from the batch, and a child whose start is still on its way hears of it once it has started.
The rule that holds in every order of those events: once paused or cancelling, nothing new
starts; a child is always brought to the batch's state as soon as it can be told. Pure logic:
the runner feeds it events and carries out the commands it answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jobservice.execution.batch import ControlState


class Command(Enum):
    """What the runner sends a child batch."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


@dataclass
class Steps:
    """What the runner must do after an event: stop its chunks, and tell these children."""

    stop_chunks: bool = False
    children: dict[int, Command] = field(default_factory=dict)


@dataclass
class _Child:
    told_paused: bool
    started: bool = False
    cancelled: bool = False


class BatchControl:
    """The control state of one batch; ``state`` is what continue-as-new carries.

    Children are not carried: a batch continues as new only when none is out.
    """

    def __init__(self, state: ControlState) -> None:
        self.state = state
        self._children: dict[int, _Child] = {}

    @property
    def paused(self) -> bool:
        return self.state.paused

    @property
    def cancelling(self) -> bool:
        return self.state.cancelling

    def may_start(self) -> bool:
        """Whether a chunk or a child batch may start now."""
        return not (self.state.paused or self.state.cancelling)

    def pause(self) -> Steps:
        return self._set_paused(True)

    def resume(self) -> Steps:
        return self._set_paused(False)

    def _set_paused(self, paused: bool) -> Steps:
        if self.state.cancelling or paused == self.state.paused:
            return Steps()
        self.state.paused = paused
        return Steps(stop_chunks=paused, children=self._tell_children())

    def cancel(self) -> Steps:
        """The batch is being cancelled: it never starts anything again, and every child is
        cancelled, those still starting included."""
        first = not self.state.cancelling
        self.state.cancelling = True
        children = {}
        for index, child in self._children.items():
            if not child.cancelled:
                child.cancelled = True
                children[index] = Command.CANCEL
        return Steps(stop_chunks=first, children=children)

    def child_starting(self, index: int) -> bool:
        """A child's start is being asked for; answers whether it starts paused."""
        if not self.may_start():
            raise RuntimeError("a child batch may not start while paused or cancelling")
        self._children[index] = _Child(told_paused=self.state.paused)
        return self.state.paused

    def child_started(self, index: int) -> Command | None:
        """The child's start went through: what it must be told to match this batch now."""
        child = self._children[index]
        child.started = True
        if self.state.cancelling:
            if child.cancelled:
                return None  # cancelled while starting: its start was cancelled with it
            child.cancelled = True
            return Command.CANCEL
        return self._bring_up_to_date(child)

    def told_paused(self, index: int) -> bool:
        """Whether the child was started paused or last told to pause."""
        child = self._children.get(index)
        return child is not None and child.told_paused

    def child_ended(self, index: int) -> None:
        self._children.pop(index, None)

    def _tell_children(self) -> dict[int, Command]:
        commands = {}
        for index, child in self._children.items():
            if child.started and (command := self._bring_up_to_date(child)) is not None:
                commands[index] = command
        return commands

    def _bring_up_to_date(self, child: _Child) -> Command | None:
        if child.told_paused == self.state.paused:
            return None
        child.told_paused = self.state.paused
        return Command.PAUSE if self.state.paused else Command.RESUME
