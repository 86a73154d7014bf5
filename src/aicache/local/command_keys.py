"""Identities for imported commands that survive history rotation and second files.

A shell history is not a log with stable positions: shells drop the oldest
lines when the file reaches its size limit, and a user may import several
files. A command's identity therefore comes from its content, never from its
line number:

- when the shell records when a command ran (zsh extended history, fish,
  bash with ``HISTTIMEFORMAT``), the identity is the time and the text (and
  how many times that pair already occurred in the file, for two identical
  commands typed in the same second);
- otherwise it is a rolling fingerprint: a hash of the command with the
  :data:`WINDOW` lines before it and one of the command with the lines after
  it. A re-import of a rotated file finds every old command through one of
  the two windows (the one that does not touch the rotated edge), while a
  different file rarely repeats the same run of ``WINDOW + 1`` commands.

Everything here is pure; :mod:`aicache.local.importer` compares the keys with
what the store already holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from aicache.local.history import ShellCommand

# How many neighbouring lines a rolling fingerprint covers on each side. Five
# lines in a row (the command and four neighbours) rarely repeat across two
# different histories, and a file needs only five lines for a full window.
WINDOW = 4

_START = "\x00start-of-file"
_END = "\x00end-of-file"


@dataclass(frozen=True, slots=True)
class CommandKey:
    """How one imported command is recognised on a later import.

    Attributes
    ----------
    timed
        For a command with a time: a hash of the scope, time, text and
        occurrence; ``None`` for a command without one.
    before, after
        For a command without a time: hashes of the command with the lines
        before it and with the lines after it (``None`` for timed commands).
    before_full, after_full
        Whether that window lies wholly inside the file (a window cut by the
        start or end of the file is only trusted together with the other).
    """

    timed: str | None
    before: str | None = None
    after: str | None = None
    before_full: bool = False
    after_full: bool = False


def _digest(*parts: str) -> str:
    material = "\x1f".join(parts)
    return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()


def command_keys(commands: Sequence[ShellCommand], *, scope: str) -> list[CommandKey]:
    """The key of each command of one file, in order.

    Parameters
    ----------
    commands
        The file's commands in typed order.
    scope
        What keeps unrelated imports apart (the source and the user): equal
        commands of two scopes never share a key.
    """
    lines = [command.line for command in commands]
    padded = [_START] * WINDOW + lines + [_END] * WINDOW
    seen_timed: dict[tuple[float, str], int] = {}
    keys: list[CommandKey] = []
    for index, command in enumerate(commands):
        if command.ts is not None:
            pair = (command.ts, command.line)
            occurrence = seen_timed.get(pair, 0)
            seen_timed[pair] = occurrence + 1
            keys.append(
                CommandKey(
                    timed=_digest(scope, "ts", repr(command.ts), command.line, str(occurrence))
                )
            )
            continue
        centre = index + WINDOW
        before = padded[centre - WINDOW : centre + 1]
        after = padded[centre : centre + WINDOW + 1]
        keys.append(
            CommandKey(
                timed=None,
                before=_digest(scope, "before", *before),
                after=_digest(scope, "after", *after),
                before_full=index >= WINDOW,
                after_full=index + WINDOW < len(commands),
            )
        )
    return keys
