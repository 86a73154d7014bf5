"""Starting commands for ``aicache run``: streamed and captured, or handed the terminal.

Standard library only, and ``subprocess`` and ``threading`` load only when a
command really runs: a cache hit never imports them.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from aicache.local.shims import resolve_program

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator

EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
EXIT_INTERRUPTED = 130
# How long an interrupted command and what it started get to exit before being killed.
INTERRUPT_GRACE_S = 5.0


def write_all(fd: int, data: bytes) -> bool:
    """Write all of ``data`` to ``fd``; ``False`` if the reader has gone."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:  # a closed pipe (| head) must not break the run
        return False
    return True


def carries_data(stdin: BinaryIO | None) -> bool:
    """Whether ``stdin`` is a pipe, file or socket (not a terminal, not ``/dev/null``)."""
    if stdin is None:
        return False
    try:
        mode = os.fstat(stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


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

    The command runs in its own process group, so that an interrupt ends it
    and everything it started (see :func:`_end_after_interrupt`). A terminal
    on standard input is replaced by ``/dev/null``: a cached answer cannot
    depend on what someone types, and a background process group reading the
    terminal would be stopped.

    Raises
    ------
    KeyboardInterrupt
        After the child has ended, if the user interrupted it.
    """
    import subprocess
    import threading

    started = time.monotonic()
    if stdin is not None:
        child_stdin: int | None = subprocess.PIPE
    elif sys.stdin is None or not carries_data(sys.stdin.buffer):
        child_stdin = subprocess.DEVNULL
    else:
        child_stdin = None  # a pipe the command may read: it inherits it untouched
    proc = subprocess.Popen(
        list(argv),
        executable=executable,
        stdin=child_stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
    )
    kept: dict[int, list[bytes]] = {1: [], 2: []}
    totals = {1: 0, 2: 0}

    def pump(source: int, target: int) -> None:
        writable = True
        while chunk := os.read(source, 65536):
            writable = writable and write_all(target, chunk)
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
        with _forwarding(proc.pid):
            proc.wait()
    except KeyboardInterrupt:
        _end_after_interrupt(proc)
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


@contextlib.contextmanager
def _forwarding(group: int) -> Iterator[None]:
    """Pass SIGTERM and SIGHUP on to the command's process group while it runs.

    The command has its own group, so a closed terminal or a ``kill`` aimed at
    aicache would otherwise leave it (and its children) running unattended.
    """
    import signal

    def forward(signum: int, _frame: object) -> None:
        _signal_group(group, signum)

    signals = (signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _end_after_interrupt(proc: subprocess.Popen[bytes]) -> None:
    """Pass the interrupt to the command's process group; kill what is left after a grace.

    The group is the command and everything it started, so a tool that
    ignores SIGINT cannot leave its own children running after it is killed.
    """
    import signal

    group = proc.pid
    _signal_group(group, signal.SIGINT)
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    while time.monotonic() < deadline:
        try:
            if proc.poll() is not None and not _group_alive(group):
                return
            time.sleep(0.05)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            break
    _signal_group(group, signal.SIGKILL)
    proc.wait()


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(group, signum)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_passthrough(argv: tuple[str, ...]) -> int:
    """Replace this process by ``argv``, with no cache at all.

    The command inherits standard input, output, error and the terminal
    exactly as if it had been started directly (an interactive session, a
    state-changing subcommand, ``AICACHE_DISABLE``, or a store that cannot be
    opened). Returns only when the command cannot be started.
    """
    import signal

    executable = resolve_program(argv[0])
    if executable is None:
        return not_found(argv[0])
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    # Python ignores SIGPIPE (and SIGXFSZ); the command must get the defaults back,
    # as it would from a shell, so that `tool | head` ends it quietly.
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execv(executable, list(argv))  # noqa: S606 - the user's own command, as typed
    except OSError as exc:
        sys.stderr.write(f"aicache: {argv[0]}: {exc.strerror or exc}\n")
    return EXIT_NOT_EXECUTABLE


def not_found(name: str) -> int:
    """Say ``command not found`` as the shell does; return its exit status."""
    sys.stderr.write(f"aicache: {name}: command not found\n")
    return EXIT_NOT_FOUND
