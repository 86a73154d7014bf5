"""The library-recs task: recommend libraries that projects like this one use.

Importing the package registers its spec (:mod:`.spec`).
"""

from aicache.tasks.library_recs.spec import SPEC
from aicache.tasks.library_recs.task import TASK_NAME, LibraryQuery, LibraryRecsTask

__all__ = ["SPEC", "TASK_NAME", "LibraryQuery", "LibraryRecsTask"]
