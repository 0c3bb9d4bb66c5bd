"""Reading a Dockerfile's instructions and a .dockerignore's rules, as far as the tests need."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

_SHELL_SEPARATORS = re.compile(r"&&|\|\||;|\|")
_REDIRECT = re.compile(r"^\d*[<>]")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str] | None:
        """The arguments of the JSON (exec) form, or None for the shell form."""
        if not self.arguments.startswith("["):
            return None
        words = json.loads(self.arguments)
        assert isinstance(words, list) and all(isinstance(word, str) for word in words)
        return words

    def copy_sources(self) -> list[str]:
        """What a COPY or ADD takes from the build context; nothing when it copies from a stage."""
        words = shlex.split(self.arguments)
        flags = [word for word in words if word.startswith("--")]
        if any(flag.startswith("--from=") for flag in flags):
            return []
        paths = [word for word in words if not word.startswith("--")]
        return paths[:-1]

    def commands_of(self, program: str) -> list[list[str]]:
        """The arguments of each ``program`` a shell-form RUN starts."""
        found = []
        for part in _SHELL_SEPARATORS.split(self.arguments):
            words = shlex.split(part)
            if words and words[0] == program:
                arguments = words[1:]
                for index, word in enumerate(arguments):
                    if _REDIRECT.match(word):
                        arguments = arguments[:index]
                        break
                found.append(arguments)
        return found


def instructions(text: str) -> list[Instruction]:
    """The instructions in order, continuation lines joined and comments left out."""
    found = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        found.append(Instruction(keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return found


@dataclass(frozen=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    keep: bool


def ignore_rules(text: str) -> list[IgnoreRule]:
    """A .dockerignore's rules in order; a later rule that matches decides."""
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        rules.append(IgnoreRule(_pattern(line.removeprefix("!").strip("/")), keep))
    return rules


def _pattern(glob: str) -> re.Pattern[str]:
    parts = []
    index = 0
    while index < len(glob):
        if glob.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif glob.startswith("**", index):
            parts.append(".*")
            index += 2
        elif glob[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif glob[index] == "?":
            parts.append("[^/]")
            index += 1
        elif glob[index] == "[":
            end = glob.index("]", index)
            parts.append(glob[index : end + 1])
            index = end + 1
        else:
            parts.append(re.escape(glob[index]))
            index += 1
    return re.compile("".join(parts))


def ignored(path: str, rules: list[IgnoreRule]) -> bool:
    """Whether ``path`` (relative to the context, with /) stays out of the build context.

    As in Docker, a rule that matches a folder also matches everything in it.
    """
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: length + 1]) for length in range(len(parts))]
    decision = False
    for rule in rules:
        if any(rule.pattern.fullmatch(prefix) for prefix in prefixes):
            decision = not rule.keep
    return decision
