"""How a running job is steered: its rate limit, its in-flight window, its failure tolerance and
its priority. Set when the job is submitted, changed while it runs (``tune``: a JSON merge
patch of these fields), and kept in the job's row."""

from __future__ import annotations

import math
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_serializer,
    field_validator,
)
from pydantic.alias_generators import to_camel

from jobservice.jobs.tolerance import (
    TOLERANCE_JSON_SCHEMA,
    FailureTolerance,
    not_a_tolerance,
    parse_tolerance,
)

MOST_URGENT, LEAST_URGENT, DEFAULT_PRIORITY = 1, 5, 3
"""Priorities as Temporal's task priority keys: 1 is served first, 3 when none is given."""
MAX_RATE_LIMIT = 1_000_000.0
"""The most items a second a limit may name: beyond it a limit holds nothing back."""
MAX_IN_FLIGHT_WINDOW = 50_000
"""The most items a job may have out on a queue without a result. What a batch's workers
said of each item in flight travels in the batch's state when its workflow continues as
new, and Temporal refuses a payload over 2 MB: 50,000 items keep it near 1 MB."""

RATE_LIMIT_MEANS = (
    "items a second the whole job may complete (a local:<handler> pipe) or publish (a queue), "
    "across every worker and batch; null: no limit"
)
IN_FLIGHT_WINDOW_MEANS = (
    "items the job may have out on a queue without a result; null: the service's setting"
)
PRIORITY_MEANS = (
    "1 (most urgent) to 5; the job's tasks are served in this order by Temporal, and its "
    "task messages carry it as their AMQP priority (6 - priority); default 3"
)


def rate_limit_refusal(value: float | None) -> str | None:
    """Why ``value`` cannot be a rate limit; None when it can."""
    if value is None:
        return None
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        return f"rateLimit {value!r} is not a rate: give items a second above 0, or null for none"
    if value > MAX_RATE_LIMIT:
        return f"rateLimit {value:g} is over {MAX_RATE_LIMIT:,.0f} items a second, the most"
    return None


def window_refusal(value: int | None) -> str | None:
    """Why ``value`` cannot be an in-flight window; None when it can."""
    if value is None:
        return None
    if isinstance(value, bool) or value < 1:
        return f"inFlightWindow {value!r} must be at least 1 item"
    if value > MAX_IN_FLIGHT_WINDOW:
        return (
            f"inFlightWindow {value:,} is over {MAX_IN_FLIGHT_WINDOW:,}, the most items a job "
            "may have out: a batch's workflow carries what its workers said of each, and "
            "Temporal caps what it carries at 2 MB"
        )
    return None


def priority_refusal(value: int) -> str | None:
    if isinstance(value, bool) or not MOST_URGENT <= value <= LEAST_URGENT:
        return (
            f"priority {value!r} is not one of {MOST_URGENT} (most urgent) to {LEAST_URGENT}; "
            f"{DEFAULT_PRIORITY} is the default"
        )
    return None


T = TypeVar("T")


def checked(refusal: str | None, value: T) -> T:
    """``value``, for a validator, unless there is a ``refusal`` of it."""
    if refusal is not None:
        raise ValueError(refusal)
    return value


_CAMEL_CASE = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SteeringChecks(BaseModel):
    """The checks of a steering's values, for every model that holds some of them: a job's
    steering, a change of it, and the steering a job is submitted with."""

    @field_validator("rate_limit", check_fields=False)
    @classmethod
    def _rate(cls, value: float | None) -> float | None:
        return checked(rate_limit_refusal(value), value)

    @field_validator(
        "rate_limit", "in_flight_window", "priority", mode="before", check_fields=False
    )
    @classmethod
    def _not_true_or_false(cls, value: Any, info: ValidationInfo) -> Any:
        """JSON's true and false are not numbers, whatever Python makes of them."""
        if isinstance(value, bool):
            name = to_camel(info.field_name or "")
            raise ValueError(f"{name} {str(value).lower()} is not a number")
        return value

    @field_validator("in_flight_window", check_fields=False)
    @classmethod
    def _window(cls, value: int | None) -> int | None:
        return checked(window_refusal(value), value)

    @field_validator("priority", check_fields=False)
    @classmethod
    def _priority(cls, value: int | None) -> int | None:
        return None if value is None else checked(priority_refusal(value), value)


class Steering(SteeringChecks):
    """The settings of a job that may change while it runs."""

    model_config = ConfigDict(**_CAMEL_CASE, frozen=True)

    rate_limit: float | None = Field(default=None, description=RATE_LIMIT_MEANS)
    in_flight_window: int | None = Field(default=None, description=IN_FLIGHT_WINDOW_MEANS)
    failure_tolerance: Annotated[
        FailureTolerance, WithJsonSchema(TOLERANCE_JSON_SCHEMA, mode="validation")
    ] = Field(default_factory=FailureTolerance)
    priority: int = Field(default=DEFAULT_PRIORITY, description=PRIORITY_MEANS)
    pipe_limit: float | None = None
    """The limit of the job's target pipe, as the job was last told (see
    ``jobservice.db.pipes``): the job then paces by its share of it. Not the job's to change:
    it is set on the pipe, and the service tells the jobs sending to it."""
    pipe_epoch: int = 0
    """The pipe's shares as last dealt (its limit set, a job joining it): a job told of a new
    deal gives up the slots it took and takes them again at its new share."""

    @field_validator("failure_tolerance", mode="before")
    @classmethod
    def _tolerance(cls, value: Any) -> Any:
        return parse_tolerance(value)

    @field_serializer("failure_tolerance")
    def _tolerance_text(self, tolerance: FailureTolerance) -> str:
        return str(tolerance)

    def window(self, default: int) -> int:
        """The in-flight window in force: the job's own, or the service's ``default``."""
        return self.in_flight_window or default

    def public(self) -> dict[str, Any]:
        """The steering as the job's JSON shows it: what a job may be tuned by."""
        return self.model_dump(mode="json", by_alias=True, exclude={"pipe_limit", "pipe_epoch"})

    @property
    def paced(self) -> bool:
        """Whether the job's chunks keep to a pace: its own rate's or its pipe's share."""
        return self.rate_limit is not None or self.pipe_limit is not None

    def amqp_priority(self) -> int:
        """The AMQP priority of the job's task messages: 5 for the most urgent, 1 the least."""
        return LEAST_URGENT + 1 - self.priority


class SteeringPatch(SteeringChecks):
    """A change of a job's steering, as a JSON merge patch (RFC 7386): a field left out stays
    as it is; ``null`` puts it back to its default (no rate limit, the service's window, no
    failures tolerated, priority 3)."""

    model_config = _CAMEL_CASE

    rate_limit: float | None = Field(default=None, description=RATE_LIMIT_MEANS)
    in_flight_window: int | None = Field(default=None, description=IN_FLIGHT_WINDOW_MEANS)
    failure_tolerance: Annotated[
        FailureTolerance | None, WithJsonSchema(TOLERANCE_JSON_SCHEMA, mode="validation")
    ] = None
    priority: int | None = Field(default=None, description=PRIORITY_MEANS)

    @field_validator("failure_tolerance", mode="before")
    @classmethod
    def _tolerance(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, dict):
            raise ValueError(not_a_tolerance(value))
        return parse_tolerance(value)

    @field_serializer("failure_tolerance")
    def _tolerance_text(self, tolerance: FailureTolerance | None) -> str | None:
        return None if tolerance is None else str(tolerance)

    @classmethod
    def parse(cls, patch: Any) -> SteeringPatch:
        """The patch ``patch`` (JSON) makes; a ValueError that says what is wrong with it."""
        try:
            return cls.model_validate(patch)
        except ValidationError as exc:
            raise ValueError(_first_error(exc)) from None

    def changes(self) -> dict[str, Any]:
        """What the patch sets, by field name; a field set to null reads as its default."""
        return {name: getattr(self, name) for name in self.model_fields_set}

    def applied_to(self, steering: Steering) -> Steering:
        """``steering`` with this patch applied."""
        defaults = Steering()
        update = {
            name: getattr(defaults, name) if value is None else value
            for name, value in self.changes().items()
        }
        return steering.model_copy(update=update)

    def wire(self) -> dict[str, Any]:
        """The patch as JSON, only what it sets: what crosses to the job's workflow."""
        return self.model_dump(mode="json", by_alias=True, include=self.model_fields_set)


def _first_error(exc: ValidationError) -> str:
    """The first thing wrong with a patch, as a person reads it."""
    error = exc.errors()[0]
    if error["type"] == "extra_forbidden":
        return (
            f"{error['loc'][0]} cannot be tuned: a job's steering is rateLimit, "
            "inFlightWindow, failureTolerance and priority"
        )
    if error["type"] == "model_type":
        return 'a change of a job\'s steering is a JSON object, e.g. {"rateLimit": 500}'
    message = str(error["msg"]).removeprefix("Value error, ")
    where = ".".join(str(part) for part in error["loc"])
    return message if not where or message.startswith(where) else f"{where}: {message}"
