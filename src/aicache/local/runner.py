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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from aicache.errors import StoreUnreadableError
from aicache.local.cache import CacheKey, Event, NewEntry, lookup, make_key, prune, record
from aicache.local.context import SCOPES, key_context, project_language, project_root
from aicache.local.normalise import command_tokens, error_signature
from aicache.local.settings import Settings
from aicache.local.shims import resolve_program
from aicache.local.single_flight import key_lock
from aicache.local.store import Store, unreadable
from aicache.local.units import parse_duration

if TYPE_CHECKING:
    import subprocess

EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
EXIT_INTERRUPTED = 130
AUTO_PRUNE_EVERY_S = 86400.0
RUN_USAGE = (
    "usage: aicache run [--refresh] [--ttl DURATION] [--no-store] [--scope S] -- CMD [ARGS...]"
)


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
    """

    command: tuple[str, ...]
    refresh: bool = False
    ttl_s: float | None = None
    no_store: bool = False
    scope: str = "project"


def parse_run_args(args: list[str]) -> RunRequest:
    """Parse the words after ``aicache run``.

    Options come first; the command starts at ``--`` or at the first word that
    is not an option.

    Raises
    ------
    ValueError
        For an unknown option, a bad value, or a missing command.
    """
    refresh = no_store = False
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
        else:
            raise ValueError(f"unknown option {word!r}; put the command after --: {RUN_USAGE}")
        index += 1
    command = tuple(args[index:])
    if not command:
        raise ValueError(f"no command given: {RUN_USAGE}")
    return RunRequest(command, refresh, ttl_s, no_store, scope)


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:  # a closed pipe (| head) must not break the run
        return False
    return True


def _read_stdin(stdin: BinaryIO | None) -> bytes | None:
    if stdin is None:
        return None
    try:
        if os.isatty(stdin.fileno()):
            return None
    except (OSError, ValueError):
        return None
    return stdin.read()


@dataclass(frozen=True, slots=True)
class Completed:
    """What a command did when it ran."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    total_bytes: int
    oversize: bool
    duration_s: float


def execute(
    argv: tuple[str, ...], executable: str, stdin: bytes | None, max_output: int
) -> Completed:
    """Run ``argv`` streaming its output live while keeping up to ``max_output`` bytes.

    Raises
    ------
    KeyboardInterrupt
        After the child has ended, if the user interrupted it.
    """
    import subprocess
    import threading

    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        executable=executable,
        stdin=None if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    kept: dict[int, list[bytes]] = {1: [], 2: []}
    totals = {1: 0, 2: 0}

    def pump(source: int, target: int) -> None:
        writable = True
        while chunk := os.read(source, 65536):
            writable = writable and _write_all(target, chunk)
            totals[target] += len(chunk)
            if totals[target] <= max_output:
                kept[target].append(chunk)
            else:
                kept[target].clear()

    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        threading.Thread(target=pump, args=(proc.stdout.fileno(), 1), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr.fileno(), 2), daemon=True),
    ]
    if stdin is not None:
        pumps.append(threading.Thread(target=_feed, args=(proc, stdin), daemon=True))
    for thread in pumps:
        thread.start()
    try:
        proc.wait()
    except KeyboardInterrupt:
        _wait_after_interrupt(proc)
        raise
    for thread in pumps:
        thread.join()
    proc.stdout.close()
    proc.stderr.close()
    code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    total = totals[1] + totals[2]
    return Completed(
        exit_code=code,
        stdout=b"".join(kept[1]),
        stderr=b"".join(kept[2]),
        total_bytes=total,
        oversize=total > max_output,
        duration_s=time.monotonic() - started,
    )


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        proc.stdin.close()
    except OSError:
        pass  # the command did not read all of its input


def _wait_after_interrupt(proc: subprocess.Popen[bytes]) -> None:
    # The terminal sent SIGINT to the child too; give it a moment to exit cleanly.
    import subprocess

    try:
        proc.wait(timeout=5)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        proc.kill()
        proc.wait()


def run_passthrough(argv: tuple[str, ...]) -> int:
    """Run ``argv`` with no cache at all (used when the store cannot be opened)."""
    import subprocess

    executable = resolve_program(argv[0])
    if executable is None:
        return _not_found(argv[0])
    try:
        return subprocess.call(list(argv), executable=executable)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _not_found(name: str) -> int:
    sys.stderr.write(f"aicache: {name}: command not found\n")
    return EXIT_NOT_FOUND


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


def run(request: RunRequest, *, stdin: BinaryIO | None = None, home: Path | None = None) -> int:
    """Serve ``request`` from the cache or run it; return the exit status to use."""
    started = time.monotonic()
    stdin_data = _read_stdin(stdin if stdin is not None else sys.stdin.buffer)
    try:
        store = Store.open(home)
    except StoreUnreadableError as exc:
        sys.stderr.write(f"aicache: warning: running without the cache: {exc}\n")
        return run_passthrough(request.command)
    progress = _Progress()
    try:
        with store:
            return _serve(store, request, stdin_data, started, progress)
    except sqlite3.DatabaseError as exc:  # damage found after opening
        error = unreadable(store.path, str(exc))
        sys.stderr.write(f"aicache: warning: running without the cache: {error}\n")
        return progress.exit_code if progress.ran else run_passthrough(request.command)


@dataclass(slots=True)
class _Progress:
    """Whether the command has already run (so a late store error does not rerun it)."""

    ran: bool = False
    exit_code: int = 0


def _serve(
    store: Store, request: RunRequest, stdin_data: bytes | None, started: float, progress: _Progress
) -> int:
    settings = Settings.from_stored(store.settings())
    cwd = Path.cwd()
    context = key_context(request.scope, cwd, dict(os.environ))
    key = make_key(list(request.command), stdin_data, context)
    event = _EventMaker(
        key=key,
        tokens=command_tokens(list(request.command)).render(),
        language=project_language(project_root(cwd)),
        raw_prompt=" ".join(request.command[1:]) if settings.raw_storage else None,
        started=started,
    )
    if not request.refresh:
        served = _serve_hit(store, key, event, progress, started)
        if served is not None:
            return served
        if not request.no_store:
            # An identical miss already running: wait for its answer instead of a second run.
            try:
                with key_lock(store.path.parent, key.digest) as waited:
                    served = _serve_hit(store, key, event, progress, started) if waited else None
                    if served is not None:
                        return served
                    return _run_miss(store, request, stdin_data, settings, event, progress)
            except KeyboardInterrupt:  # while waiting: nothing ran
                return EXIT_INTERRUPTED
    return _run_miss(store, request, stdin_data, settings, event, progress)


def _serve_hit(
    store: Store, key: CacheKey, event: _EventMaker, progress: _Progress, started: float
) -> int | None:
    """Write the stored answer for ``key`` and return its exit status (``None`` on a miss)."""
    answer = lookup(store, key, time.time())
    if answer is None:
        return None
    progress.ran, progress.exit_code = True, answer.exit_code
    _write_all(1, answer.stdout)
    _write_all(2, answer.stderr)
    saved = max(0.0, answer.duration_s - (time.monotonic() - started))
    size = len(answer.stdout) + len(answer.stderr)
    hit = event("hit", output_bytes=size, exit_code=answer.exit_code, saved_s=saved)
    record(store, hit, hit=key.digest)
    return answer.exit_code


def _run_miss(
    store: Store,
    request: RunRequest,
    stdin_data: bytes | None,
    settings: Settings,
    event: _EventMaker,
    progress: _Progress,
) -> int:
    name = request.command[0]
    executable = resolve_program(name)
    if executable is None:
        code = _not_found(name)
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
        _maybe_prune(store, settings)
    return done.exit_code


def _maybe_prune(store: Store, settings: Settings) -> None:
    last = store.get_setting("last-prune")
    now = time.time()
    if last is None or now - float(last) > AUTO_PRUNE_EVERY_S:
        # Only the retention window here: expired answers may still be refreshed
        # by `aicache prefetch`, and `aicache prune` decides which to keep.
        prune(store, now=now, max_age_s=settings.max_age_s, drop_expired=False)
