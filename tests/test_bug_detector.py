"""The bug-detector task: its sites, its examples, what it learns from real code, its scans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aicache.registry.shipped import shipped_model
from aicache.tasks.base import FitConfig
from aicache.tasks.bug_detector.detector import THRESHOLD, scan_files, scan_source
from aicache.tasks.bug_detector.model import SiteSet
from aicache.tasks.bug_detector.sites import find_sites
from aicache.tasks.bug_detector.sources import CodeFile, InstalledPackages, project_files
from aicache.tasks.bug_detector.task import BugDetectorTask

BINARY_SEARCH = """\
def find(items, wanted):
    lo, hi = 0, len(items)
    while lo < hi:
        mid = (lo + hi) // 2
        if items[mid] < wanted:
            lo = mid + 1
        else:
            hi = mid
    return lo
"""


def test_sites_offer_the_written_token_first_and_its_alternatives() -> None:
    # Execute
    sites = find_sites(BINARY_SEARCH)
    # Assert: the loop's comparison, the bound's offset and the variables are sites
    loop = next(s for s in sites if s.kind == "comparison" and s.line == 3)
    assert loop.tokens[0] == "<" and "<=" in loop.tokens
    assert loop.shown[loop.tokens.index("<=")] == "lo <= hi"
    bound = next(s for s in sites if s.kind == "off-by-one" and s.line == 6)
    assert bound.tokens[0] == "+1" and bound.shown[bound.tokens.index("+0")] == "mid"
    variable = next(s for s in sites if s.kind == "variable" and s.line == 5)
    assert variable.tokens[0] == "items" and "wanted" in variable.tokens
    assert all(len(s.features) == len(s.tokens) == len(s.shown) for s in sites)


def test_a_syntax_error_is_raised_not_swallowed() -> None:
    # Execute / Assert
    with pytest.raises(SyntaxError):
        find_sites("def broken(:\n    pass\n")


def test_examples_take_slices_in_site_order() -> None:
    # Prepare
    examples = SiteSet.from_sites(find_sites(BINARY_SEARCH))
    # Execute
    picked = examples.take(np.array([3, 1]))
    # Assert: a batch holds exactly the rows of the sites it names, in that order
    one, three = examples.slice(1, 2), examples.slice(3, 4)
    assert np.array_equal(picked.indices, np.concatenate([three.indices, one.indices]))
    assert list(np.diff(picked.site_ptr)) == [np.diff(three.site_ptr)[0], np.diff(one.site_ptr)[0]]


def test_fit_on_developers_code_detects_mutations_of_another_package() -> None:
    # Prepare: three simulated developers' real code (installed packages)
    source = InstalledPackages(seed=0, clients=3, lines=2000)
    task = BugDetectorTask()
    train = SiteSet.concatenate([task.load_local(source.records(c)) for c in (0, 1)])
    test = task.load_local(source.records(2))
    start = task.init_params(0)
    # Execute
    fitted = task.fit(start, train, FitConfig(learning_rate=0.05, local_epochs=2))
    # Assert: planted mutations of a package it never saw score above the code as written
    before, after = task.evaluate(start, test), task.evaluate(fitted.params, test)
    assert before["detection_auc"] == pytest.approx(0.5)
    assert after["detection_auc"] > 0.7
    assert after["loss"] < before["loss"]


def test_scan_ranks_a_planted_slip_and_skips_what_it_cannot_read(tmp_path: Path) -> None:
    # Prepare: a model trained on the file's correct twin, then the file with a slip
    task = BugDetectorTask()
    corpus = [CodeFile(f"copy{i}.py", BINARY_SEARCH) for i in range(20)]
    weights = task.fit(
        task.init_params(0), task.load_local(corpus), FitConfig(learning_rate=0.1, local_epochs=3)
    ).params[0]
    (tmp_path / "good.py").write_text(BINARY_SEARCH)
    (tmp_path / "slip.py").write_text(BINARY_SEARCH.replace("lo < hi", "lo <= hi"))
    (tmp_path / "broken.py").write_text("def broken(:\n")
    (tmp_path / "latin1.py").write_bytes(b"name = '\xe9'\n")
    # Execute
    report = scan_files(weights, project_files(tmp_path), threshold=0.0, root=tmp_path)
    # Assert
    top = report.findings[0]
    assert (top.path, top.line, top.kind) == ("slip.py", 3, "comparison")
    assert top.replacement == "lo < hi"
    assert not [f for f in report.findings if f.path == "good.py"]
    assert dict(report.skipped).keys() == {"broken.py", "latin1.py"}
    assert "syntax error at line 1" in dict(report.skipped)["broken.py"]
    assert report.files == 2
    assert scan_source(weights, "", threshold=None) == []


def test_the_threshold_is_the_one_the_shipped_models_rule_chose() -> None:
    # Prepare
    shipped = shipped_model("bug-detector")
    assert shipped is not None
    # Assert: the constant is the rule's result on held-out code, and the model is DP-trained
    assert shipped.record["threshold"] == THRESHOLD
    assert "holds out of training" in shipped.record["threshold_rule"]
    assert shipped.privacy["dp"] == "central" and shipped.privacy["epsilon"] <= 4.0
