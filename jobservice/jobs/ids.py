"""What a partition id and a job id may hold: visible characters, none that a task id or a
path uses, and no more than the job database's columns keep."""

from __future__ import annotations

import re
import unicodedata

from jobservice.errors import InvalidJobError

PARTITION_ID_LENGTH = 40
"""The longest partition id: the width of its column in the job database."""
JOB_ID_LENGTH = 48
"""The longest job id: the width of its column in the job database."""
CONTROL_CHARACTERS = r"\x00-\x1f\x7f"
"""The ASCII control characters, as a regular expression character class's inside."""
SEPARATORS = ".,:;*?!|()"
"""What the reference's ids may not hold: the separators of task ids and its filters."""
OTHER_SPACES = r"\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""White space other than the ordinary space (U+0020), which an id may hold inside it."""
ID_FORBIDDEN = r".,:;*?!|()/" + CONTROL_CHARACTERS + OTHER_SPACES
"""What an id may not hold, as a regular expression character class's inside."""
ID_PATTERN = f"^[^{ID_FORBIDDEN} ]([^{ID_FORBIDDEN}]*[^{ID_FORBIDDEN} ])?$"
"""An id as a regular expression: no space at either end."""
_SEPARATOR = re.compile(f"[{re.escape(SEPARATORS)}]")
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
_OTHER_SPACE = re.compile(f"[{OTHER_SPACES}]")
_INVISIBLE = {
    "Cc": "a control",
    "Cf": "a format",
    "Co": "a private-use",
    "Cs": "a surrogate",
    "Cn": "an unassigned",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
"""The Unicode categories an id may not hold: what is invisible, or reorders or hides text
(U+202E, U+200B), or has no meaning yet."""


def check_id(kind: str, value: str, longest: int) -> None:
    """Refuse ``value`` as a ``kind`` (a partition id, a job id) with an :class:`InvalidJobError`
    that says why, unless it is a valid id of at most ``longest`` characters."""
    if not value:
        raise InvalidJobError(f"the {kind} is empty")
    if len(value) > longest:
        raise InvalidJobError(
            f"the {kind} {value[:longest]!r}... is longer than {longest} characters"
        )
    reason = _broken_rule(value)
    if reason is not None:
        raise InvalidJobError(f"the {kind} {value!r} {reason}")
    # Nothing invisible and nothing that reorders text, so that an id shows what it is.
    for character in value:
        category = _INVISIBLE.get(unicodedata.category(character))
        if category is not None:
            name = unicodedata.name(character, "")
            raise InvalidJobError(
                f"the {kind} {value!r} contains U+{ord(character):04X}{f' {name}' if name else ''},"
                f" {category} character; an id holds visible characters only"
            )


def _broken_rule(value: str) -> str | None:
    """Which rule of ids ``value`` breaks, said as the rest of a sentence; None: none."""
    if match := _SEPARATOR.search(value):
        return (
            f"contains {match.group()!r}: an id may not hold . , : ; * ? ! | ( ), which "
            "separate the parts of task ids and filters"
        )
    if "/" in value:
        return "contains '/': an id is one segment of the job's URL"
    if _CONTROL.search(value):
        return "contains a control character (a tab, a line break...): an id shows what it is"
    if _OTHER_SPACE.search(value):
        return "contains white space other than the ordinary space"
    if value != value.strip(" "):
        return "begins or ends with a space: spaces may be inside an id only"
    return None


def validate_ids(partition: str, job_id: str | None = None) -> None:
    """Partition ids up to 40 characters, job ids up to 48, with none of ``.,:;*?!|()/``, no
    white space but ordinary spaces inside, and nothing invisible: no control, format,
    private-use, surrogate, unassigned or line or paragraph separator character."""
    check_id("partition id", partition, PARTITION_ID_LENGTH)
    if job_id is not None:
        check_id("job id", job_id, JOB_ID_LENGTH)
