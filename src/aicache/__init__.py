"""aicache: a private, collaborative cache for AI command-line assistants.

Importing the package is kept free of heavy dependencies: the cache-hit path
starts from here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
