"""Shared presentation helpers: consoles, error printing, times."""

from __future__ import annotations

import time

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def print_error(message: str, hint: str = "") -> None:
    """Print an error (and what to do about it) on standard error."""
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    if hint:
        err.print(hint, markup=False, soft_wrap=True)


def print_interrupted(message: str) -> None:
    """Say on standard error, in one line, that Ctrl-C stopped the command (and how to go on)."""
    err.print(message, style="yellow", markup=False, soft_wrap=True)


def ago(ts: float | None, now: float | None = None) -> str:
    """``3m ago``-style rendering of a timestamp (``-`` when absent)."""
    if ts is None:
        return "-"
    delta = (now or time.time()) - ts
    future = delta < 0
    delta = abs(delta)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            text = f"{int(delta // size)}{unit}"
            break
    else:
        text = f"{int(delta)}s"
    return f"in {text}" if future else f"{text} ago"


def when(ts: float | None) -> str:
    """An ISO-like local time (``-`` when absent)."""
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
