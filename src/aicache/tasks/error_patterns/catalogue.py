"""The public catalogue of error signatures: real tool output, recorded by running tools.

``recorded/outputs.json`` holds the stderr of broken commands and snippets
really run through python, pip, git, npm/node, make, gcc, rustc, javac, the
``llm`` CLI and the shell (``scripts/record_error_outputs.py`` runs them
again). Each becomes an error key, ``tool: signature``, reduced by the one
stripping rule (:func:`aicache.local.normalise.error_signature`).

The federation counts keys in a public hashed domain of :data:`BUCKETS`
buckets: a key's bucket is fixed by its text alone, so every client and the
server agree on it without sharing any list, and a client can look up its
own keys, catalogued or not.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib.resources import files

from aicache.features.error_events import BUCKETS, bucket, error_key, key_of

__all__ = ["BUCKETS", "RecordedError", "bucket", "catalogue", "key_of", "recorded_errors"]


@dataclass(frozen=True, slots=True)
class RecordedError:
    """One failing command as its tool reported it.

    Attributes
    ----------
    name
        What was broken (``module-not-found``).
    tool
        The program that failed (``python``).
    command
        The command line that was run.
    stderr
        What it wrote to stderr (the project's location replaced by ``~/project``).
    """

    name: str
    tool: str
    command: str
    stderr: str

    @property
    def key(self) -> str | None:
        """Its error key (``tool: signature``), or ``None`` when stderr names no error."""
        return error_key(self.tool, self.stderr)


@functools.cache
def recorded_errors() -> tuple[RecordedError, ...]:
    """Every recorded failing command shipped with aicache."""
    text = files("aicache.tasks.error_patterns").joinpath("recorded/outputs.json").read_text()
    return tuple(
        RecordedError(str(r["name"]), str(r["tool"]), str(r["command"]), str(r["stderr"]))
        for r in json.loads(text)
    )


@functools.cache
def catalogue() -> tuple[str, ...]:
    """The distinct error keys of the recorded outputs, in recording order."""
    keys = (r.key for r in recorded_errors())
    return tuple(dict.fromkeys(k for k in keys if k is not None))
