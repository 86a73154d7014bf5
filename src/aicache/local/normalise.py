"""Turn private command lines and error output into minimal, normalised tokens.

The store keeps these instead of raw text unless the user turns raw storage
on: a program name, a subcommand where one is meaningful, the names of flags,
and error messages with paths, numbers and quoted values replaced by
placeholders.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# Programs whose second word selects what they do ("git commit", "make test").
SUBCOMMAND_PROGRAMS = frozenset(
    (
        "apt apt-get aws az brew bundle cargo claude composer conda docker docker-compose "
        "dotnet flwr gcloud gemini gh git go gradle helm hg kubectl llm make mvn npm npx ollama "
        "openai pip pip3 pipx pnpm poetry podman qwen rake rustup snap svn systemctl terraform "
        "uv yarn aicache"
    ).split()
)
# Wrappers that run the next word as the real program.
_WRAPPERS = frozenset({"sudo", "time", "nohup", "env", "command", "exec", "nice"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SUBCOMMAND = re.compile(r"^[a-z][a-z0-9_.:-]{0,31}$")
_FLAG = re.compile(r"^(--?[A-Za-z][A-Za-z0-9-]*)")
_SEPARATORS = frozenset({";", "&&", "||", "|", "&"})
# Global options that take a value before the subcommand ("git -C DIR commit").
_VALUE_OPTIONS = {"git": frozenset({"-C", "-c"}), "docker": frozenset({"-H", "--context"})}


@dataclass(frozen=True, slots=True)
class CommandTokens:
    """The normalised shape of one command line.

    Attributes
    ----------
    program
        The basename of the program that runs (``git``), or ``""`` for an
        empty line.
    subcommand
        Its subcommand when the program has them and one was given
        (``commit``), else ``None``.
    flags
        The names of the flags given, in order, without their values.
    n_args
        How many words followed the program.
    """

    program: str
    subcommand: str | None
    flags: tuple[str, ...]
    n_args: int

    @property
    def command(self) -> str:
        """``program`` or ``program subcommand``: the unit next-command prediction uses."""
        return f"{self.program} {self.subcommand}" if self.subcommand else self.program

    def render(self) -> str:
        """A one-line form with no argument values, safe to keep without raw storage."""
        return " ".join([self.command, *self.flags])


def split_words(line: str) -> list[str]:
    """Split a shell line into words, tolerating unbalanced quotes."""
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = ""
        return list(lexer)
    except ValueError:
        return line.split()


def command_tokens(line: str | list[str]) -> CommandTokens:
    """Normalise the first simple command of ``line`` (a string or an argv list).

    Leading variable assignments and wrappers such as ``sudo`` are skipped, the
    program is reduced to its basename, and only flag names are kept.
    """
    words = split_words(line) if isinstance(line, str) else list(line)
    for index, word in enumerate(words):
        if word in _SEPARATORS:
            words = words[:index]
            break
    while words and (_ASSIGNMENT.match(words[0]) or words[0] in _WRAPPERS):
        words = words[1:]
    if not words:
        return CommandTokens("", None, (), 0)
    program = words[0].rstrip("/").rsplit("/", 1)[-1] or words[0]
    rest = words[1:]
    subcommand = None
    if program in SUBCOMMAND_PROGRAMS:
        takes_value = _VALUE_OPTIONS.get(program, frozenset())
        skip_next = False
        for word in rest:
            if skip_next or word.startswith("-"):
                skip_next = word in takes_value
                continue
            if _SUBCOMMAND.match(word):
                subcommand = word
            break
    flags = tuple(m.group(1) for w in rest if (m := _FLAG.match(w)))
    return CommandTokens(program, subcommand, flags, len(rest))


_PATH = re.compile(r"(?:~|\.{1,2})?(?:/[\w.@+-]+)+/?")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-f]{8,}\b")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
_SPACES = re.compile(r"\s+")
_ERROR_WORDS = re.compile(r"error|exception|fatal|failed|denied|not found|no such|cannot", re.I)
MAX_SIGNATURE = 160


def error_signature(stderr: str) -> str | None:
    """Reduce error output to a signature that names the error but no private value.

    The most telling line (the last one that mentions an error, else the last
    non-empty line) is kept with paths, quoted values, hexadecimal ids and
    numbers replaced by ``<path>``, ``<str>``, ``<hex>`` and ``<n>``.

    Returns
    -------
    str or None
        The signature, or ``None`` when there is no output to describe.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return None
    telling = [line for line in lines if _ERROR_WORDS.search(line)]
    line = (telling or lines)[-1]
    line = _QUOTED.sub("<str>", line)
    line = _PATH.sub("<path>", line)
    line = _HEX.sub("<hex>", line)
    line = _NUMBER.sub("<n>", line)
    line = _SPACES.sub(" ", line).strip()
    return line[:MAX_SIGNATURE]
