"""``aicache run``: run any command through the cache.

This module is the cache-hit path, so it imports only the standard library
and the small modules of this package; ``subprocess`` and ``threading`` load
only on a miss.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from aicache.errors import StoreUnreadableError
from aicache.local.adapters import Invocation, Kind, classify, config_digest, user_marked
from aicache.local.cache import CacheKey, Event, NewEntry, lookup, make_key, prune, record
from aicache.local.context import SCOPES, key_context, project_language, project_root
from aicache.local.eviction import Budget, current_scorer, enforce_budget, usage
from aicache.local.home_key import HomeKeyError, home_key
from aicache.local.normalise import command_tokens, error_signature
from aicache.local.process import (
    EXIT_INTERRUPTED,
    EXIT_NOT_EXECUTABLE,
    carries_data,
    execute,
    not_found,
    run_passthrough,
    write_all,
)
from aicache.local.settings import Settings
from aicache.local.shims import resolve_program
from aicache.local.single_flight import key_lock
from aicache.local.store import Store, unreadable
from aicache.local.units import parse_duration

if TYPE_CHECKING:
    from aicache.local.semantic_run import SemanticCall
    from aicache.local.semantic_store import SemanticProvider

AUTO_PRUNE_EVERY_S = 86400.0
RUN_USAGE = (
    "usage: aicache run [--refresh] [--exact] [--ttl DURATION] [--no-store] [--scope S] [--stdin] "
    "-- CMD [ARGS...]"
)
# Set (to anything but 0) to run commands without the cache, for one call or a whole shell.
DISABLE_VARIABLE = "AICACHE_DISABLE"


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A parsed ``aicache run`` call.

    Attributes
    ----------
    command
        The command and its arguments.
    refresh
        Run the command even on a hit, and replace the entry.
    ttl_s
        Seconds the new entry stays valid, or ``None`` for no expiry.
    no_store
        Do not store the result (a hit is still served).
    scope
        Which context the key includes (see :data:`aicache.local.context.SCOPES`).
    stdin
        Read standard input and key on it, whatever the adapter table says.
    wrapped
        The call comes from an ``aicache wrap`` shim: a tool outside the
        adapter table passes through unless the user marked it cacheable.
    exact
        Serve only an answer to this very command: no semantic hit.
    """

    command: tuple[str, ...]
    refresh: bool = False
    ttl_s: float | None = None
    no_store: bool = False
    scope: str = "project"
    stdin: bool = False
    wrapped: bool = False
    exact: bool = False


def parse_run_args(args: list[str]) -> RunRequest:
    """Parse the words after ``aicache run``.

    Options come first; the command starts at ``--`` or at the first word that
    is not an option.

    Raises
    ------
    ValueError
        For an unknown option, a bad value, or a missing command.
    """
    refresh = no_store = read_stdin = wrapped = exact = False
    ttl_s: float | None = None
    scope = "project"
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--":
            index += 1
            break
        if not word.startswith("-") or word == "-":
            break
        name, has_value, inline = word.partition("=")
        if name in ("--ttl", "--scope"):
            if has_value:
                value = inline
            elif index + 1 < len(args):
                index += 1
                value = args[index]
            else:
                raise ValueError(f"option {name} needs a value")
            if name == "--ttl":
                ttl_s = parse_duration(value)
            elif value in SCOPES:
                scope = value
            else:
                raise ValueError(f"invalid scope {value!r}: choose one of {', '.join(SCOPES)}")
        elif word == "--refresh":
            refresh = True
        elif word == "--no-store":
            no_store = True
        elif word == "--stdin":
            read_stdin = True
        elif word == "--wrapped":
            wrapped = True
        elif word == "--exact":
            exact = True
        else:
            raise ValueError(f"unknown option {word!r}; put the command after --: {RUN_USAGE}")
        index += 1
    command = tuple(args[index:])
    if not command:
        raise ValueError(f"no command given: {RUN_USAGE}")
    return RunRequest(command, refresh, ttl_s, no_store, scope, read_stdin, wrapped, exact)


@dataclass(frozen=True, slots=True)
class _EventMaker:
    """The parts of an event that are known before the outcome."""

    key: CacheKey
    tokens: str
    language: str | None
    raw_prompt: str | None
    started: float

    def __call__(
        self,
        outcome: str,
        *,
        output_bytes: int = 0,
        exit_code: int,
        stored: bool = False,
        oversize: bool = False,
        saved_s: float = 0.0,
        error_signature: str | None = None,
    ) -> Event:
        return Event(
            tool=self.key.tool,
            key_hash=self.key.event_hash,
            outcome=outcome,
            latency_ms=(time.monotonic() - self.started) * 1000,
            output_bytes=output_bytes,
            exit_code=exit_code,
            stored=stored,
            tokens=self.tokens,
            oversize=oversize,
            saved_s=saved_s,
            error_signature=error_signature,
            language=self.language,
            raw_prompt=self.raw_prompt,
        )


def run(
    request: RunRequest,
    *,
    stdin: BinaryIO | None = None,
    home: Path | None = None,
    semantic: SemanticProvider | None = None,
) -> int:
    """Serve ``request`` from the cache or run it; return the exit status to use.

    ``semantic`` supplies the model for semantic hits, called only on a miss
    of a command that carries a prompt (see :mod:`aicache.local.semantic_run`);
    without it the cache answers exact repeats only.

    Sessions, state-changing calls (by the adapter table), calls with
    ``AICACHE_DISABLE`` set, and, from a shim, tools outside the table that
    the user did not mark cacheable replace this process with the command.
    Standard input is read only when the tool takes its prompt from it or
    ``--stdin`` asks; otherwise the command inherits it untouched.
    """
    started = time.monotonic()
    if os.environ.get(DISABLE_VARIABLE, "") not in ("", "0"):
        return run_passthrough(request.command)
    source = stdin if stdin is not None else (sys.stdin.buffer if sys.stdin else None)
    piped = carries_data(source)
    invocation = classify(request.command, stdin_piped=piped)
    if invocation.kind in (Kind.INTERACTIVE, Kind.STATEFUL):
        return run_passthrough(request.command)
    try:
        store = Store.open(home)
    except StoreUnreadableError as exc:
        sys.stderr.write(f"aicache: warning: running without the cache: {exc}\n")
        return run_passthrough(request.command)
    try:
        home_key(store.path.parent)  # before any input is read, so a bad key file loses none
    except HomeKeyError as exc:
        store.close()
        sys.stderr.write(f"aicache: warning: running without the cache: {exc}\n")
        return run_passthrough(request.command)
    progress = _Progress()
    try:
        with store:
            settings = Settings.from_stored(store.settings())
            if _cacheable(request, invocation, settings):
                wanted = piped and (invocation.reads_stdin or request.stdin)
                if piped and not wanted:
                    # The command may read input that is not in the key: an
                    # answer kept or served here would ignore that input.
                    return _run_unkeyed_input(store, request, settings, started, progress)
                stdin_data = source.read() if wanted and source is not None else None
                return _serve(
                    store,
                    request,
                    _Call(invocation, settings, semantic),
                    stdin_data,
                    started,
                    progress,
                )
    except sqlite3.DatabaseError as exc:  # damage found after opening
        error = unreadable(store.path, str(exc))
        sys.stderr.write(f"aicache: warning: running without the cache: {error}\n")
        return progress.exit_code if progress.ran else run_passthrough(request.command)
    return run_passthrough(request.command)  # after the store is closed


def _cacheable(request: RunRequest, invocation: Invocation, settings: Settings) -> bool:
    """Whether the cache may answer: known prompts always; other tools unless from a shim."""
    if invocation.kind is Kind.PROMPT or not request.wrapped:
        return True
    return user_marked(request.command, settings.cacheable)


class _Call(NamedTuple):
    """What is known of a call before its key: its invocation, settings, and semantic model."""

    invocation: Invocation
    settings: Settings
    semantic: SemanticProvider | None


@dataclass(slots=True)
class _Progress:
    """Whether the command has already run (so a late store error does not rerun it)."""

    ran: bool = False
    exit_code: int = 0


def _serve(
    store: Store,
    request: RunRequest,
    call: _Call,
    stdin_data: bytes | None,
    started: float,
    progress: _Progress,
) -> int:
    invocation, settings = call.invocation, call.settings
    cwd = Path.cwd()
    environ = dict(os.environ)
    context = key_context(request.scope, cwd, environ)
    program = _program_identity(request.command[0], invocation, environ, cwd)
    if program is not None:
        context.update(program)
    key = make_key(list(request.command), stdin_data, context, secret=home_key(store.path.parent))
    event = _EventMaker(
        key=key,
        tokens=command_tokens(list(request.command)).render(),
        language=project_language(project_root(cwd)),
        raw_prompt=" ".join(request.command[1:]) if settings.raw_storage else None,
        started=started,
    )
    if not request.refresh:
        served = _serve_hit(store, key, event, progress, started, settings)
        if served is not None:
            return served
        meaning = _semantic_call(store, request, call, key, stdin_data)
        if meaning is not None:
            served = _serve_semantic(store, meaning, key, event, progress, started)
            if served is not None:
                return served
        if not request.no_store:
            # An identical miss already running: wait for its answer instead of a second run.
            try:
                with key_lock(store.path.parent, key.digest) as waited:
                    served = (
                        _serve_hit(store, key, event, progress, started, settings)
                        if waited
                        else None
                    )
                    if served is not None:
                        return served
                    return _run_miss(store, request, stdin_data, settings, event, progress, meaning)
            except KeyboardInterrupt:  # while waiting: nothing ran
                return EXIT_INTERRUPTED
        return _run_miss(store, request, stdin_data, settings, event, progress, meaning)
    meaning = _semantic_call(store, request, call, key, stdin_data)
    if meaning is not None and request.refresh:
        meaning.refreshed(store, time.time())
    return _run_miss(store, request, stdin_data, settings, event, progress, meaning)


def _semantic_call(
    store: Store, request: RunRequest, call: _Call, key: CacheKey, stdin_data: bytes | None
) -> SemanticCall | None:
    """The semantic side of a miss, when the call carries a prompt and semantic hits are on."""
    if call.semantic is None or request.exact or not call.settings.semantic:
        return None
    from aicache.local.semantic_run import SemanticCall, prompt_places, semantic_query

    places = prompt_places(key.argv, call.invocation, call.settings)
    secret = home_key(store.path.parent)
    query = semantic_query(key, places, stdin_data, request.scope, secret=secret)
    return None if query is None else SemanticCall(query, call.semantic)


def _serve_semantic(
    store: Store,
    meaning: SemanticCall,
    key: CacheKey,
    event: _EventMaker,
    progress: _Progress,
    started: float,
) -> int | None:
    """Serve the cached answer to a reworded prompt, when the decision finds one."""
    from aicache.local.semantic_run import serve

    served = serve(store, meaning, key, started)
    if served is None:
        return None
    hit, stdout, stderr, exit_code, saved = served
    progress.ran, progress.exit_code = True, exit_code
    size = len(stdout) + len(stderr)
    record(
        store,
        event("hit", output_bytes=size, exit_code=exit_code, saved_s=saved),
        hit=hit.candidate.key,
    )
    meaning.served(store, hit)
    return exit_code


def _run_unkeyed_input(
    store: Store, request: RunRequest, settings: Settings, started: float, progress: _Progress
) -> int:
    """Run a command given piped input it is not known to take its prompt from.

    The command inherits the input and its answer is neither served nor kept:
    ``git diff | aicache run -- mytool review`` must not replay the review of
    yesterday's diff. ``--stdin`` puts the input in the key instead.
    """
    if settings.show_hits:
        sys.stderr.write(
            f"aicache: {request.command[0]} was given piped input that is not in the key: "
            "running it without the cache (add --stdin to cache on the input)\n"
        )
    cwd = Path.cwd()
    context = key_context(request.scope, cwd, dict(os.environ))
    key = make_key(list(request.command), None, context, secret=home_key(store.path.parent))
    event = _EventMaker(
        key=key,
        tokens=command_tokens(list(request.command)).render(),
        language=project_language(project_root(cwd)),
        raw_prompt=" ".join(request.command[1:]) if settings.raw_storage else None,
        started=started,
    )
    unkept = replace(request, no_store=True, stdin=False)
    return _run_miss(store, unkept, None, settings, event, progress)


def _serve_hit(
    store: Store,
    key: CacheKey,
    event: _EventMaker,
    progress: _Progress,
    started: float,
    settings: Settings,
) -> int | None:
    """Write the stored answer for ``key`` and return its exit status (``None`` on a miss)."""
    answer = lookup(store, key, time.time())
    if answer is None:
        return None
    progress.ran, progress.exit_code = True, answer.exit_code
    write_all(1, answer.stdout)
    write_all(2, answer.stderr)
    if settings.show_hits:
        write_all(2, _hit_note(answer.created_at))
    saved = max(0.0, answer.duration_s - (time.monotonic() - started))
    size = len(answer.stdout) + len(answer.stderr)
    hit = event("hit", output_bytes=size, exit_code=answer.exit_code, saved_s=saved)
    record(store, hit, hit=key.digest)
    return answer.exit_code


def _program_identity(
    name: str, invocation: Invocation, environ: dict[str, str], cwd: Path
) -> dict[str, str] | None:
    """What identifies the program in the key.

    A tool of the adapter table is its name (the same ``llm`` wherever it is
    installed, so a moved install keeps its answers) plus a hash of the
    configuration that selects its model or account. Any other program is
    the file it resolves to, so ``/a/tool`` never replays ``/b/tool``.
    """
    if invocation.adapter is not None:
        digest = config_digest(invocation, environ, cwd)
        return None if digest is None else {"tool-config": digest}
    executable = resolve_program(name)
    if executable is None:
        return None
    return {"program": os.path.realpath(executable)}


def _hit_note(created_at: float) -> bytes:
    age = max(0.0, time.time() - created_at)
    when = f"{age:.0f} s" if age < 120 else f"{age / 60:.0f} min" if age < 7200 else ""
    if not when:
        when = f"{age / 3600:.0f} h" if age < 172800 else f"{age / 86400:.0f} days"
    return (
        f"aicache: cached answer from {when} ago "
        f"(aicache run --refresh, or {DISABLE_VARIABLE}=1, to run it)\n"
    ).encode()


def _run_miss(
    store: Store,
    request: RunRequest,
    stdin_data: bytes | None,
    settings: Settings,
    event: _EventMaker,
    progress: _Progress,
    meaning: SemanticCall | None = None,
) -> int:
    name = request.command[0]
    executable = resolve_program(name)
    if executable is None:
        code = not_found(name)
        record(store, event("error", exit_code=code))
        return code
    try:
        done = execute(request.command, executable, stdin_data, settings.max_output)
    except KeyboardInterrupt:
        progress.ran, progress.exit_code = True, EXIT_INTERRUPTED
        record(store, event("error", exit_code=EXIT_INTERRUPTED))
        return EXIT_INTERRUPTED
    except OSError as exc:  # not executable, bad interpreter line, ...
        sys.stderr.write(f"aicache: {name}: {exc.strerror or exc}\n")
        record(store, event("error", exit_code=EXIT_NOT_EXECUTABLE))
        return EXIT_NOT_EXECUTABLE
    progress.ran, progress.exit_code = True, done.exit_code
    store_it = done.exit_code == 0 and not request.no_store and not done.oversize
    entry = None
    if store_it:
        expires = None if request.ttl_s is None else time.time() + request.ttl_s
        entry = NewEntry(event.key, done.stdout, done.stderr, 0, done.duration_s, expires)
    signature = None
    if done.exit_code != 0:
        signature = error_signature(done.stderr.decode("utf-8", "replace"))
    outcome = ("refresh" if request.refresh else "miss") if done.exit_code == 0 else "error"
    result = event(
        outcome,
        output_bytes=done.total_bytes,
        exit_code=done.exit_code,
        stored=store_it,
        oversize=done.oversize,
        error_signature=signature,
    )
    record(store, result, entry=entry)
    if store_it:
        if meaning is not None:
            meaning.index(store, event.key.digest)
        _maybe_prune(store, settings, event.key.digest)
    return done.exit_code


def _maybe_prune(store: Store, settings: Settings, stored: str) -> None:
    last = store.get_setting("last-prune")
    now = time.time()
    if last is None or now - float(last) > AUTO_PRUNE_EVERY_S:
        # Only the retention window here: expired answers may still be refreshed
        # by `aicache prefetch`, and `aicache prune` decides which to keep.
        prune(store, now=now, max_age_s=settings.max_age_s, drop_expired=False)
        from aicache.local.semantic_store import prune_feedback

        prune_feedback(store, now=now, max_age_s=settings.max_age_s)
    budget = Budget(settings.max_entries, settings.max_size)
    if budget.limited and budget.exceeded(*usage(store)):
        # Past the budget the scorer (a learned model, loaded only then) picks what goes;
        # the answer just stored stays.
        enforce_budget(store, budget, current_scorer(store), protect=stored)
