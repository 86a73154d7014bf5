"""Turn private command lines and error output into minimal, normalised tokens.

The store keeps these instead of raw text unless the user turns raw storage
on: a program name, a subcommand where one is meaningful, the names of flags
(never their values), and an error signature: the error's class and a
template of its message with every literal, path, number and word outside a
fixed error vocabulary replaced by a placeholder. A word that looks like a
key or token (:mod:`aicache.local.secrets`) is never kept as a program,
subcommand or flag.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from aicache.local.error_names import is_public_exception
from aicache.local.secrets import looks_like_secret

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
# A flag's name: a long option up to "=", or a short one's single letter (as
# getopt reads it: in -pVALUE or -la, what follows the letter is a value or more
# flags, and a value glued to its flag must not be kept as part of its name).
_FLAG = re.compile(r"^(--[A-Za-z][A-Za-z0-9_-]*|-[A-Za-z])")
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
    program is reduced to its basename, and only flag names are kept. A line
    whose program looks like a secret (a key pasted at the prompt) names no
    program; a subcommand or flag name that looks like one is dropped.
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
    if looks_like_secret(words[0]):
        return CommandTokens("", None, (), 0)
    rest = words[1:]
    subcommand = None
    if program in SUBCOMMAND_PROGRAMS:
        takes_value = _VALUE_OPTIONS.get(program, frozenset())
        skip_next = False
        for word in rest:
            if skip_next or word.startswith("-"):
                skip_next = word in takes_value
                continue
            if _SUBCOMMAND.match(word) and not looks_like_secret(word):
                subcommand = word
            break
    flags = tuple(
        m.group(1) for w in rest if (m := _FLAG.match(w)) and not looks_like_secret(m.group(1))
    )
    return CommandTokens(program, subcommand, flags, len(rest))


_PATH = re.compile(r"(?:~|\.{1,2})?(?:/[\w.@+-]+)+/?")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-f]{8,}\b")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
_SPACES = re.compile(r"\s+")
_ERROR_WORDS = re.compile(
    r"error|exception|fatal|failed|denied|not found|no such|cannot|undefined reference", re.I
)
# Lines every failure of a tool prints, which name no error: where the log went,
# how many errors there were, a compiler's notes and its closing words.
_BOILERPLATE = re.compile(
    r"complete log of this run|for more information about this error|aborting due to"
    r"|^compilation terminated|^\d+ errors?$|collect2: error: ld returned|: note: |^note: "
    r"|^npm error\s*$|^npm error (?:code|syscall|path|errno)\b|^npm error A complete",
    re.I,
)
# An exception class (ValueError, IOException, ...) or a compiler's error code.
_CLASS = re.compile(
    r"\b[A-Z][A-Za-z0-9]*(?:Error|Exception|Failure|Fault|Interrupt|Exit)\b"
    r"|\berror\[[A-Z]+\d+\]|\b(?:TS|CS|E)\d{3,5}\b"
)
_CODE = re.compile(r"error\[[A-Z]+\d+\]|(?:TS|CS|E)\d{3,5}")
# A class name qualified by its modules ("billing.errors.InvoiceMismatchError"):
# the modules are the user's (or a library's) and never kept.
_QUALIFIED = re.compile(r"\b(?:[A-Za-z_][\w]*\.)+([A-Z][A-Za-z0-9_]*)\b")
# A bare word that is a public exception class ("StopIteration", "KeyboardInterrupt").
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9]+\b")
EXCEPTION_PLACEHOLDER = "<exc>"
_NPM = re.compile(r"^npm (?:error|ERR!)")
_LABEL = re.compile(r"\b(fatal|error|err!|panic|warning|exception|traceback)\b", re.I)
# A placeholder already put in, or a word (a number glued to letters, as in
# "3pm" or "v2", is a word too: only bare numbers became <n>).
_WORD = re.compile(r"<(?:path|str|hex|n|exc)>|[^\W_][\w'-]*")
# Short words that join free words: a run "<w> the <w> for <w>" is one "<w>".
_JOINERS = "a an the to of in on at for from with by or and as if but than into this that it"
_FREE_RUN = re.compile(
    r"<w>(?:(?:[\s,;:.'-]|\b(?:" + "|".join(_JOINERS.split()) + r")\b)*<w>)+", re.IGNORECASE
)
# The only words an error signature keeps: the vocabulary of error messages.
# Everything else (names, prompt words echoed back, identifiers) becomes <w>.
ERROR_VOCABULARY = frozenset(
    """
    a an the no not is are was were be been being has have had do does did done it this that
    to of in on at for from with by or and as if but than into
    cannot can't could couldn't unable can may must should would won't don't doesn't
    error errors exception fatal failed fail fails failure denied permission permissions
    access found such file files directory directories folder path module modules named name
    command commands program unknown invalid missing required expected unexpected argument
    arguments option options value values type types syntax token tokens timeout timed out
    connection connect refused reset closed network unreachable host resolve resolved dns
    key attribute object undefined defined null none nil index range limit rate exceeded quota
    too many requests request server internal service unavailable overloaded model gateway
    bad unauthorized forbidden authentication authenticate api http https status code exit
    exited killed terminated signal memory disk space full read write only lock locked busy
    already exists exist empty version incompatible unsupported deprecated import cannot open
    load parse decode encode encoding json utf utf-8 try again later retry please check use
    help usage see more information context length maximum max input output response line
    column warning panic abort aborted traceback most recent call last raise raised
    segmentation fault core dumped broken pipe interrupted operation allowed supported errno
    enoent eacces eperm econnrefused etimedout eaddrinuse enospc eexist enotdir eisdir epipe
    certificate ssl tls verify verification expired self signed handshake proxy invalid
    database table column constraint violation duplicate entry format malformed corrupt
    out-of-memory overflow underflow division zero stack assertion assert unreachable
    """.split()
)
MAX_SIGNATURE = 160
_LABELS_ONLY = frozenset({"error", "fatal", "err!", "panic", "warning", "exception", "traceback"})


def _public_class(name: str) -> str:
    """``name`` when it is a public exception class or an error code, else ``<exc>``."""
    return name if is_public_exception(name) or _CODE.fullmatch(name) else EXCEPTION_PLACEHOLDER


def error_class(line: str) -> str:
    """The error's class named in ``line``: an exception class, a code, or a label.

    ``ValueError``, ``error[E0425]`` or ``TS2304`` when one is named, else the
    lower-cased label (``error``, ``fatal``, ``panic``, ...), else ``error``.
    A class that is not public (:mod:`aicache.local.error_names`: one the
    user's own code defines) is ``<exc>``, never its name.
    """
    named = _CLASS.search(line)
    if named:
        return _public_class(named.group(0))
    bare = next(
        (m.group(0) for m in _CAPITALISED.finditer(line) if is_public_exception(m.group(0))), None
    )
    if bare is not None:
        return bare
    label = _LABEL.search(line)
    return label.group(1).lower() if label else "error"


def error_template(line: str) -> str:
    """``line`` with literals, paths, hex ids, numbers and free words replaced.

    Quoted values become ``<str>``, paths ``<path>``, hexadecimal ids
    ``<hex>``, numbers ``<n>``; a word is kept only if it is a public
    exception class or in :data:`ERROR_VOCABULARY` (another exception class
    becomes ``<exc>``, and the modules qualifying a class are dropped), and
    each run of other words becomes one ``<w>``. Punctuation stays.
    """
    line = _QUALIFIED.sub(
        lambda m: m.group(1) if _CLASS.fullmatch(m.group(1)) else m.group(0), line
    )
    line = _QUOTED.sub("<str>", line)
    line = _PATH.sub("<path>", line)
    line = _HEX.sub("<hex>", line)
    line = _NUMBER.sub("<n>", line)

    def keep(match: re.Match[str]) -> str:
        word = match.group(0)
        if word.startswith("<") or word.lower() in ERROR_VOCABULARY:
            return word
        if _CLASS.fullmatch(word) or is_public_exception(word):
            return _public_class(word)
        return "<w>"

    line = _WORD.sub(keep, line)
    line = _FREE_RUN.sub("<w>", line)
    return _SPACES.sub(" ", line).strip()


def error_signature(stderr: str) -> str | None:
    """Reduce error output to a signature that names the error and no private value.

    The most telling line (the last one that mentions an error, else the last
    non-empty line) becomes ``CLASS: TEMPLATE``: its :func:`error_class` and
    its :func:`error_template` (the class is not repeated when the template
    starts with it). A prompt the tool echoed back leaves only ``<w>``.

    Returns
    -------
    str or None
        The signature, or ``None`` when there is no output to describe.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return None
    relevant = [line for line in lines if not _BOILERPLATE.search(line)]
    telling = [line for line in relevant if _ERROR_WORDS.search(line)]
    named = [line for line in relevant if error_class(line) not in _LABELS_ONLY]
    if telling and _NPM.match(telling[0]):
        line = telling[0]  # npm states the error first, then how to look into it
    else:
        # A named class (the last line of a traceback) says most; else the last line
        # that mentions an error; else the headline (git's hints come after it).
        line = named[-1] if named else telling[-1] if telling else lines[0]
    cls = error_class(line)
    template = error_template(line)
    signature = template if template.lower().startswith(cls.lower()) else f"{cls}: {template}"
    return signature[:MAX_SIGNATURE]
