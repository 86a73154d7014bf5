"""The bug-detector task: single-token slips in Python code, learned from the developer's own.

Importing the package registers its spec (:mod:`.spec`); ``aicache scan``
uses :mod:`.detector`.
"""

from aicache.tasks.bug_detector.detector import THRESHOLD, Finding, ScanReport, scan_files
from aicache.tasks.bug_detector.sources import CodeFile, InstalledPackages, project_files
from aicache.tasks.bug_detector.spec import SPEC
from aicache.tasks.bug_detector.task import BugDetectorTask, ScanContext

__all__ = [
    "SPEC",
    "THRESHOLD",
    "BugDetectorTask",
    "CodeFile",
    "Finding",
    "InstalledPackages",
    "ScanContext",
    "ScanReport",
    "project_files",
    "scan_files",
]
