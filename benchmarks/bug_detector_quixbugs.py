"""The bug detector on real bugs: QuixBugs' single-token and off-by-one Python bugs.

QuixBugs (Lin et al. 2017, MIT licence) holds 40 small programs, each with
one real bug on one line, and their fixed versions. Its code is not part of
this repository; get it with::

    git clone https://github.com/jkoppel/QuixBugs /tmp/QuixBugs
    python benchmarks/bug_detector_quixbugs.py --data /tmp/QuixBugs

The bugs judged are the 18 whose fix changes one token or adds/removes a
``± 1`` (:data:`BUGS`, chosen by reading each program's one-line diff; the
other 22 add a statement, a call or a condition, which no single-token
detector can suggest). For each, the buggy file is scanned and the rank of
the first finding on the bug's line is recorded ("located"), and whether that
finding's suggestion is the fix ("exact"). The fixed versions
(``correct_python_programs/``, or the buggy file with the one-line fix applied
when a checkout lacks it) are scanned at the default threshold: every finding
there is a false alarm.

The model is the one ``aicache scan`` serves (the shipped one), or ``--params``
(an ``.npz`` of the task's parameters); nothing here is tuned on QuixBugs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from aicache.tasks.bug_detector.detector import THRESHOLD, Finding, scan_source

# program: (kind of slip, the buggy code on its line, the fixed code)
BUGS: dict[str, tuple[str, str, str]] = {
    "bitcount": ("operator", "n ^= n - 1", "n &= n - 1"),
    "breadth_first_search": ("literal", "while True:", "while queue:"),
    "bucketsort": ("variable", "enumerate(arr)", "enumerate(counts)"),
    "find_first_in_sorted": ("comparison", "while lo <= hi:", "while lo < hi:"),
    "find_in_sorted": ("off-by-one", "binsearch(mid, end)", "binsearch(mid + 1, end)"),
    "gcd": ("swapped-arguments", "gcd(a % b, b)", "gcd(b, a % b)"),
    "hanoi": ("variable", "steps.append((start, helper))", "steps.append((start, end))"),
    "knapsack": ("comparison", "if weight < j:", "if weight <= j:"),
    "lcs_length": ("off-by-one", "dp[i - 1, j] + 1", "dp[i - 1, j - 1] + 1"),
    "next_palindrome": ("off-by-one", "(len(digit_list)) * [0]", "(len(digit_list) - 1) * [0]"),
    "next_permutation": ("comparison", "if perm[j] < perm[i]:", "if perm[j] > perm[i]:"),
    "pascal": ("off-by-one", "for c in range(0, r):", "for c in range(0, r + 1):"),
    "quicksort": ("comparison", "if x > pivot])", "if x >= pivot])"),
    "rpn_eval": ("swapped-arguments", "op(token, a, b)", "op(token, b, a)"),
    "shortest_path_lengths": (
        "swapped-arguments",
        "length_by_path[j, k]",
        "length_by_path[k, j]",
    ),
    "sieve": ("variable", "if any(n % p > 0", "if all(n % p > 0"),
    "to_base": (
        "swapped-operands",
        "result = result + alphabet[i]",
        "result = alphabet[i] + result",
    ),
    "topological_ordering": (
        "attribute",
        "issuperset(nextnode.outgoing_nodes)",
        "issuperset(nextnode.incoming_nodes)",
    ),
}
TOP = 3


@dataclass(frozen=True, slots=True)
class BugResult:
    """How the detector ranked one real bug, and what it found on the fixed version."""

    program: str
    kind: str
    located: int | None
    exact: int | None
    flagged: bool
    sites: int
    fixed_alarms: int


def _squash(text: str) -> str:
    return "".join(text.split())


def judge(program: str, buggy: str, fixed: str, weights: np.ndarray, threshold: float) -> BugResult:
    """Rank ``program``'s bug in its buggy file and count false alarms on its fixed file."""
    kind, wrong, right = BUGS[program]
    lines = buggy.splitlines()
    line = next(i for i, text in enumerate(lines, 1) if wrong in text)
    want = _squash(lines[line - 1].replace(wrong, right, 1))
    findings: list[Finding] = scan_source(weights, buggy, path=program, threshold=None)
    located = next((r for r, f in enumerate(findings, 1) if f.line == line), None)
    # Exact: the suggestion, put in place of the code it names, makes the fixed line.
    exact = next(
        (
            r
            for r, f in enumerate(findings, 1)
            if f.line == line
            and _squash(lines[line - 1].replace(f.written, f.replacement, 1)) == want
        ),
        None,
    )
    flagged = any(f.line == line and f.score > threshold for f in findings)
    alarms = scan_source(weights, fixed, path=program, threshold=threshold)
    return BugResult(program, kind, located, exact, flagged, len(findings), len(alarms))


def load_weights(params: Path | None) -> np.ndarray:
    """The weights of ``params`` (an ``.npz``), or of the model ``aicache scan`` serves."""
    if params is not None:
        with np.load(params, allow_pickle=False) as saved:
            return np.asarray(saved[saved.files[0]], dtype=np.float64)
    from aicache.registry.shipped import shipped_model

    shipped = shipped_model("bug-detector")
    if shipped is None:
        raise SystemExit("no bug-detector model came with this install; give --params")
    return np.asarray(shipped.arrays[0], dtype=np.float64)


def main() -> int:
    """Judge every bug of :data:`BUGS` and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a QuixBugs checkout")
    parser.add_argument("--params", type=Path, default=None)
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    buggy_dir = args.data / "python_programs"
    if not buggy_dir.is_dir():
        print(f"--data {args.data}: no python_programs/ folder (clone QuixBugs)", file=sys.stderr)
        return 2
    weights = load_weights(args.params)
    results = []
    for program, (_, wrong, right) in BUGS.items():
        path = buggy_dir / f"{program}.py"
        if not path.is_file():
            print(f"skipped {program}: {path} missing", file=sys.stderr)
            continue
        buggy = path.read_text(encoding="utf-8")
        correct = args.data / "correct_python_programs" / f"{program}.py"
        fixed = (
            correct.read_text(encoding="utf-8")
            if correct.is_file()
            else buggy.replace(wrong, right, 1)
        )
        results.append(judge(program, buggy, fixed, weights, args.threshold))
    summary = {
        "bugs": len(results),
        "located_top3": sum(1 for r in results if r.located is not None and r.located <= TOP),
        "exact_top3": sum(1 for r in results if r.exact is not None and r.exact <= TOP),
        "flagged": sum(1 for r in results if r.flagged),
        "fixed_files": len(results),
        "fixed_alarms": sum(r.fixed_alarms for r in results),
        "threshold": args.threshold,
    }
    if args.json:
        print(json.dumps({"summary": summary, "bugs": [asdict(r) for r in results]}, indent=2))
        return 0
    print(f"{'program':24} {'kind':18} {'located':>7} {'exact':>5} {'sites':>5} {'alarms':>6}")
    for r in results:
        print(
            f"{r.program:24} {r.kind:18} {r.located or '-':>7} {r.exact or '-':>5} "
            f"{r.sites:>5} {r.fixed_alarms:>6}"
        )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
