"""Public names of a package that import their modules on first use (PEP 562).

A package's ``__init__`` names where each public name lives; nothing is
imported until a name is read, so importing the package stays cheap (a cache
hit, a node's ClientApp and ``suggest`` load only what they use).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], object]:
    """The module ``__getattr__`` of ``package``: each name in ``homes`` from its module.

    Parameters
    ----------
    package
        The package's ``__name__``.
    homes
        Public name -> the module that defines it.
    """

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        # Bound on the package: later reads are ordinary attribute lookups.
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
