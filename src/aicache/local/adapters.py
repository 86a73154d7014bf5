"""What aicache knows about each AI command-line tool: the adapter table.

An adapter says, for one tool, which invocations are one-shot prompts (cached),
which are interactive sessions (passed through with the terminal untouched),
and which read or change the tool's own state or only inform (never cached:
``llm logs``, ``llm models``, a ``--continue``\\d conversation). It also names
the configuration files and environment variables that select the model or
account (their content goes into the key, hashed), whether a prompt also comes
from standard input, and where the prompt text is.

The table is data: to teach aicache a new tool, add one :class:`Adapter` to
:data:`ADAPTERS`. Its records are named tuples rather than dataclasses because
the table is built on every call, cache hits included, and named tuples cost a
fraction of a dataclass to define. When in doubt an invocation is *not* a prompt: passing a
prompt through costs a call, replaying a session or a log would be wrong.

This module is on the cache-hit path: standard library only, no regular
expressions, a few ``stat`` and small reads per call.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple


class Kind(enum.Enum):
    """What an invocation is, and so whether the cache may answer it."""

    PROMPT = "prompt"
    """A one-shot question whose answer depends only on its key: cached."""
    INTERACTIVE = "interactive"
    """A session on the terminal: passed through, the tool inherits stdin/stdout/stderr."""
    STATEFUL = "stateful"
    """Reads or changes the tool's state, or only informs: passed through, never cached."""
    UNKNOWN = "unknown"
    """A tool the table does not know."""


class Command(NamedTuple):
    """A subcommand path (``("logs",)``, ``("api", "chat.completions.create")``) and its kind.

    ``skip`` positionals after the path are not prompt text (``ollama run MODEL PROMPT``).
    """

    words: tuple[str, ...]
    kind: Kind
    skip: int = 0


class ConfigDir(NamedTuple):
    """A folder of configuration whose listed files (or folders) select the model or account.

    ``candidates`` are tried in order: one with ``$VAR`` counts when every
    variable is set (the tool would use it even before creating it); one
    without counts when it exists. The first that counts is used.
    """

    candidates: tuple[str, ...]
    files: tuple[str, ...]

    def locate(self, environ: dict[str, str]) -> Path | None:
        """The folder the tool uses under ``environ``, or ``None`` if there is none."""
        for candidate in self.candidates:
            if "$" in candidate:
                expanded = _expand(candidate, environ)
                if expanded is not None:
                    return Path(expanded).expanduser()
            else:
                path = Path(candidate).expanduser()
                if path.is_dir():
                    return path
        return None


def _expand(template: str, environ: dict[str, str]) -> str | None:
    parts = template.split("/")
    for index, part in enumerate(parts):
        if part.startswith("$"):
            value = environ.get(part[1:])
            if not value:
                return None
            parts[index] = value
    return "/".join(parts)


class Adapter(NamedTuple):
    """How one tool is called.

    Attributes
    ----------
    tool
        The program's name (``llm``).
    commands
        Subcommand paths and their kinds; the longest matching path wins.
    default
        The kind when no subcommand matches and there is a positional word
        (``llm PROMPT`` is a prompt, ``claude PROMPT`` starts a session).
    bare
        The kind when there is no positional word at all.
    prompt_flags
        Flags that make a one-shot prompt whatever else is there (``claude -p``).
    prompt_options
        Options whose value is the prompt text (``gemini -p TEXT``).
    interactive_flags, stateful_flags
        Flags that make an invocation interactive, or stateful (``-c``/``--continue``).
    value_options, pair_options
        Options followed by one value, or by two; their values are not positionals.
    stdin
        Whether a prompt invocation reads standard input when it is not a terminal.
    file_options
        Options that name a file whose content goes into the key (``-`` is stdin).
    config
        Configuration folders that select the model or account.
    environment
        Environment variables that select the model, endpoint or account.
    """

    tool: str
    commands: tuple[Command, ...] = ()
    default: Kind = Kind.STATEFUL
    bare: Kind = Kind.INTERACTIVE
    prompt_flags: frozenset[str] = frozenset()
    prompt_options: frozenset[str] = frozenset()
    interactive_flags: frozenset[str] = frozenset()
    stateful_flags: frozenset[str] = frozenset()
    value_options: frozenset[str] = frozenset()
    pair_options: frozenset[str] = frozenset()
    stdin: bool = True
    file_options: frozenset[str] = frozenset()
    config: tuple[ConfigDir, ...] = ()
    environment: tuple[str, ...] = ()


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _stateful(*names: str) -> tuple[Command, ...]:
    return tuple(Command((name,), Kind.STATEFUL) for name in names)


# Help and version output is information, not an answer.
INFO_FLAGS = _words("-h --help --version")

ADAPTERS: dict[str, Adapter] = {
    a.tool: a
    for a in (
        Adapter(
            tool="llm",
            commands=(
                Command(("prompt",), Kind.PROMPT),
                Command(("chat",), Kind.INTERACTIVE),
                *_stateful(
                    "aliases", "collections", "embed", "embed-models", "embed-multi",
                    "fragments", "install", "keys", "logs", "models", "openai", "plugins",
                    "schemas", "similar", "templates", "tools", "uninstall",
                ),
            ),
            default=Kind.PROMPT,
            bare=Kind.PROMPT,
            stateful_flags=_words("-c --continue --cid --conversation --save"),
            value_options=_words(
                "-m --model -s --system -t --template -a --attachment --at -f --fragment "
                "--sf --system-fragment -T --tool --functions --schema --schema-multi "
                "-d --database --key --chain-limit --cl --attachment-type"
            ),
            pair_options=_words("-o --option -p --param --at --attachment-type"),
            file_options=_words("-a --attachment -f --fragment --sf --system-fragment"),
            config=(
                ConfigDir(
                    (
                        "$LLM_USER_PATH",
                        "$XDG_CONFIG_HOME/io.datasette.llm",
                        "~/Library/Application Support/io.datasette.llm",
                        "~/.config/io.datasette.llm",
                    ),
                    ("default_model.txt", "aliases.json", "extra-openai-models.yaml", "templates"),
                ),
            ),
            environment=("LLM_USER_PATH", "LLM_MODEL", "OPENAI_BASE_URL"),
        ),
        Adapter(
            tool="claude",
            commands=_stateful(
                "config", "mcp", "migrate-installer", "setup-token", "doctor", "update",
                "install", "plugin",
            ),
            default=Kind.INTERACTIVE,
            prompt_flags=_words("-p --print"),
            # A session resumed, or a run allowed to edit files, is not a pure answer.
            stateful_flags=_words(
                "-c --continue -r --resume --session-id --dangerously-skip-permissions "
                "--permission-mode --allowedTools --allowed-tools"
            ),
            value_options=_words(
                "--model --output-format --input-format --disallowedTools --disallowed-tools "
                "--append-system-prompt --system-prompt --mcp-config --fallback-model "
                "--settings --agents --add-dir --max-turns --setting-sources "
                "--permission-prompt-tool"
            ),
            config=(ConfigDir(("$CLAUDE_CONFIG_DIR", "~/.claude"), ("settings.json",)),),
            environment=(
                "ANTHROPIC_MODEL", "ANTHROPIC_BASE_URL", "CLAUDE_CODE_USE_BEDROCK",
                "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CONFIG_DIR",
            ),
        ),
        *(
            Adapter(
                tool=name,
                commands=_stateful("mcp", "extensions"),
                default=Kind.INTERACTIVE,
                # With its input piped and no prompt, the tool answers once and exits.
                bare=Kind.PROMPT,
                prompt_options=_words("-p --prompt"),
                interactive_flags=_words("-i --prompt-interactive"),
                stateful_flags=_words("-y --yolo --approval-mode -r --resume --checkpointing"),
                value_options=_words(
                    "-m --model -p --prompt -i --prompt-interactive --approval-mode "
                    "-e --extensions --allowed-mcp-server-names --include-directories "
                    "-o --output-format --telemetry-target --telemetry-otlp-endpoint"
                ),
                config=(ConfigDir((f"~/.{name}",), ("settings.json",)),),
                environment=model_environment,
            )
            for name, model_environment in (
                ("gemini", ("GEMINI_MODEL", "GOOGLE_CLOUD_PROJECT", "GOOGLE_GENAI_USE_VERTEXAI")),
                ("qwen", ("OPENAI_MODEL", "OPENAI_BASE_URL")),
            )
        ),
        Adapter(
            tool="openai",
            commands=(
                Command(("api", "chat.completions.create"), Kind.PROMPT),
                Command(("api", "completions.create"), Kind.PROMPT),
            ),
            bare=Kind.STATEFUL,
            stdin=False,
            prompt_options=_words("-g --message -p --prompt"),
            value_options=_words(
                "-m --model -p --prompt -M --max-tokens -t --temperature -P --top_p -n "
                "--stop --api-key --organization --api-base --api-type --api-version"
            ),
            pair_options=_words("-g --message"),
            environment=(
                "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_API_TYPE",
            ),
        ),
        Adapter(
            tool="ollama",
            commands=(
                # `ollama run MODEL` alone, on a terminal, is a chat (see classify).
                Command(("run",), Kind.PROMPT, skip=1),
                *_stateful(
                    "serve", "create", "show", "stop", "pull", "push", "signin", "signout",
                    "list", "ls", "ps", "cp", "rm", "help",
                ),
            ),
            bare=Kind.STATEFUL,
            stateful_flags=_words("--keepalive"),
            value_options=_words("--format --keepalive --think --dimensions"),
            environment=("OLLAMA_HOST",),
        ),
        Adapter(
            tool="gcloud",
            commands=(
                Command(("ai", "endpoints", "predict"), Kind.PROMPT, skip=1),
                Command(("ai", "endpoints", "raw-predict"), Kind.PROMPT, skip=1),
            ),
            bare=Kind.STATEFUL,
            stdin=False,
            value_options=_words(
                "--region --json-request --request --project --account --configuration "
                "--format --http-headers"
            ),
            file_options=_words("--json-request"),
            config=(
                ConfigDir(
                    ("$CLOUDSDK_CONFIG", "~/.config/gcloud"), ("active_config", "configurations")
                ),
            ),
            environment=(
                "CLOUDSDK_CONFIG", "CLOUDSDK_ACTIVE_CONFIG_NAME", "CLOUDSDK_CORE_PROJECT",
                "CLOUDSDK_CORE_ACCOUNT", "CLOUDSDK_AI_REGION",
            ),
        ),
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Invocation:
    """What one call of a tool is, as the cache sees it.

    Attributes
    ----------
    kind
        Whether it is a prompt, a session, a state-touching call, or unknown.
    adapter
        The tool's adapter, or ``None`` for a tool the table does not know.
    prompt
        The prompt text given on the command line, if the tool is known and it
        is a prompt (standard input, when read, comes on top).
    reads_stdin
        Whether the tool takes (part of) its prompt from standard input.
    files
        Files named by ``file_options``, whose content goes into the key.
    prompt_at
        Where the prompt text is: the indexes of the argv words that carry it
        (the program is index 0). The rest of the argv is the call's frame,
        which a semantic hit must share.
    """

    kind: Kind
    adapter: Adapter | None
    prompt: str | None = None
    reads_stdin: bool = False
    files: tuple[str, ...] = ()
    prompt_at: tuple[int, ...] = ()


_Options = list[tuple[str, tuple[str, ...]]]


class _Places(NamedTuple):
    """Where the words of a parse are: each positional's index, each option's last value's."""

    positionals: list[int]
    options: list[int]


def _parse(adapter: Adapter, args: list[str]) -> tuple[_Options, tuple[str, ...], _Places]:
    """Split ``args`` into options with their values, and positional words, and where they are."""
    options: _Options = []
    positionals: list[str] = []
    places = _Places([], [])
    index = 0
    rest_positional = False
    while index < len(args):
        word = args[index]
        index += 1
        if rest_positional or word == "-" or not word.startswith("-"):
            positionals.append(word)
            places.positionals.append(index - 1)
            continue
        if word == "--":
            rest_positional = True
            continue
        name, has_inline, inline = word.partition("=")
        if not word.startswith("--") and len(word) > 2 and word[:2] in adapter.value_options:
            name, has_inline, inline = word[:2], "=", word[2:]  # -mgpt-4o
        wanted = 2 if name in adapter.pair_options else 1 if name in adapter.value_options else 0
        values = [inline] if has_inline else []
        while len(values) < wanted and index < len(args):
            values.append(args[index])
            index += 1
        options.append((name, tuple(values)))
        places.options.append(index - 1)
    return options, tuple(positionals), places


def classify(argv: list[str] | tuple[str, ...], *, stdin_piped: bool = False) -> Invocation:
    """What running ``argv`` is, by the adapter of its program (looked up by basename).

    ``stdin_piped`` says whether standard input carries data (a pipe or a
    file, not a terminal): a prompt with no text on the command line and
    nothing piped in would ask the terminal, so it is interactive.
    """
    tool = argv[0].rstrip("/").rsplit("/", 1)[-1]
    adapter = ADAPTERS.get(tool)
    if adapter is None:
        return Invocation(Kind.UNKNOWN, None)
    options, positionals, places = _parse(adapter, list(argv[1:]))
    names = {name for name, _ in options}
    if names & INFO_FLAGS or names & adapter.stateful_flags:
        return Invocation(Kind.STATEFUL, adapter)
    if names & adapter.interactive_flags:
        return Invocation(Kind.INTERACTIVE, adapter)
    command = _match(adapter, positionals)
    rest, first = positionals, 0
    if command is not None:
        first = len(command.words) + command.skip
        kind, rest = command.kind, rest[first:]
        if len(positionals) < len(command.words) + command.skip:
            kind = Kind.STATEFUL  # `ollama run` without a model only prints its usage
    elif names & (adapter.prompt_flags | adapter.prompt_options):
        kind = Kind.PROMPT
    else:
        kind = adapter.default if rest else adapter.bare
    if kind is not Kind.PROMPT:
        return Invocation(kind, adapter)
    texts = [v[-1] for name, v in options if name in adapter.prompt_options and v]
    texts.extend(rest)
    at = [
        where + 1
        for (name, v), where in zip(options, places.options, strict=True)
        if name in adapter.prompt_options and v
    ]
    at.extend(where + 1 for where in places.positionals[first:])
    files = tuple(v[0] for name, v in options if name in adapter.file_options and v)
    reads_stdin = (adapter.stdin or "-" in files) and stdin_piped
    if not texts and not reads_stdin and not files:
        return Invocation(Kind.INTERACTIVE, adapter)
    prompt = " ".join(texts) if texts else None
    return Invocation(Kind.PROMPT, adapter, prompt, reads_stdin, files, tuple(at))


def _match(adapter: Adapter, positionals: tuple[str, ...]) -> Command | None:
    best: Command | None = None
    for command in adapter.commands:
        size = len(command.words)
        if positionals[:size] == command.words and (best is None or size > len(best.words)):
            best = command
    return best


def prompt_of(argv: list[str] | tuple[str, ...]) -> str | None:
    """The prompt text of a cacheable invocation of a known tool, else ``None``.

    Only the command line counts here; a prompt piped on standard input is
    the caller's to add.
    """
    invocation = classify(argv)
    return invocation.prompt if invocation.kind is Kind.PROMPT else None


def _hash_path(digest: hashlib._Hash, path: Path) -> None:
    try:
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file():
                    digest.update(f"\0{child.name}\0".encode("utf-8", "surrogateescape"))
                    digest.update(child.read_bytes())
        elif path.is_file():
            digest.update(path.read_bytes())
        else:
            digest.update(b"\0absent")
    except OSError:
        digest.update(b"\0unreadable")


def config_digest(
    invocation: Invocation, environ: dict[str, str], cwd: Path | None = None
) -> str | None:
    """A hash of what selects the model or account, and of the files the prompt names.

    Covers the adapter's configuration files and environment variables and
    the content of ``file_options`` files; ``None`` for an unknown tool. Only
    the hash goes into the key: settings files may hold secrets.
    """
    adapter = invocation.adapter
    if adapter is None:
        return None
    digest = hashlib.sha256(b"aicache-tool-config-1")
    for folder in adapter.config:
        located = folder.locate(environ)
        digest.update(b"\0dir\0" + str(located).encode("utf-8", "surrogateescape"))
        if located is not None:
            for name in folder.files:
                digest.update(b"\0file\0" + name.encode())
                _hash_path(digest, located / name)
    for name in adapter.environment:
        value = environ.get(name)
        if value is not None:
            digest.update(f"\0env\0{name}={value}".encode("utf-8", "surrogateescape"))
    for name in invocation.files:
        if name != "-":
            digest.update(b"\0arg\0" + name.encode("utf-8", "surrogateescape"))
            _hash_path(digest, (cwd or Path.cwd()) / name)
    return digest.hexdigest()[:32]


def user_marked(argv: list[str] | tuple[str, ...], marks: tuple[str, ...]) -> bool:
    """Whether ``argv`` starts with one of the user's cacheable marks (``"mytool ask"``)."""
    words = [argv[0].rstrip("/").rsplit("/", 1)[-1], *argv[1:]]
    for mark in marks:
        wanted = mark.split()
        if wanted and words[: len(wanted)] == wanted:
            return True
    return False


__all__ = [
    "ADAPTERS",
    "Adapter",
    "Command",
    "ConfigDir",
    "Invocation",
    "Kind",
    "classify",
    "config_digest",
    "prompt_of",
    "user_marked",
]
