"""Fuzzing the edges with Hypothesis: whatever arrives, only the documented error escapes.

Each property feeds one entry point input an attacker or a damaged disk could
produce (a client's reply, a bundle, an inbox file, a history file, a registry
row) and requires either a result or the entry point's documented error type:
never a traceback from deeper down. Examples that once broke a property are
kept as explicit ``@example`` cases.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg, FedMedian, FedTrimmedAvg, Krum, Strategy
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aicache.deploy.bundle import BUNDLE_FORMAT, Bundle
from aicache.deploy.distribution import MANIFEST_FORMAT, Delivery, Inbox, pull
from aicache.deploy.freshness import NewestVerified
from aicache.errors import AicacheError
from aicache.federation.validation import (
    NoValidAggregateError,
    ValidatedStrategy,
    reply_problem,
    update_problem,
)
from aicache.local.history import parse_greenberg, parse_history, read_text
from aicache.local.importer import import_commands
from aicache.local.store import Store
from aicache.registry import ArtifactError, ModelRegistry
from aicache.registry.artifacts import decode_arrays, encode_arrays, sha256_hex
from aicache.security import signing
from aicache.simulation.sources import GreenbergSource

# Bounded so that the whole file runs in well under a minute in CI.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TASK = "next-command"
REFERENCE = [np.zeros((2, 2)), np.zeros(3)]

# -- update validation ------------------------------------------------------------

dtypes = st.sampled_from(
    ["float64", "float32", "float16", "longdouble", "int64", "int8", "bool", "complex128"]
)
shapes = st.sampled_from([(2, 2), (3,), (2,), (4, 1), (), (0,)])


@st.composite
def any_array(draw: st.DrawFn) -> np.ndarray:
    return draw(hnp.arrays(draw(dtypes), draw(shapes)))


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)


@FUZZ
@given(
    arrays=st.lists(any_array(), max_size=3),
    num_examples=numbers,
    task=st.sampled_from([TASK, "other", ""]),
    bound=st.sampled_from([0.0, 1.0, 5.0, 1e300]),
)
def test_update_problem_returns_a_reason_or_none_and_none_means_sound(
    arrays: list[np.ndarray], num_examples: float, task: str, bound: float
) -> None:
    problem = update_problem(
        arrays,
        REFERENCE,
        num_examples=num_examples,
        task=task,
        expected_task=TASK,
        max_update_norm=bound,
    )
    assert problem is None or isinstance(problem, str)
    if problem is None:  # what passed is a finite float model of the right shapes and norm
        assert task == TASK and np.isfinite(num_examples) and num_examples > 0
        assert [a.shape for a in arrays] == [r.shape for r in REFERENCE]
        assert all(a.dtype.kind == "f" and np.all(np.isfinite(a)) for a in arrays)
        norm = sum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrays) ** 0.5
        assert bound == 0 or norm <= bound * (1 + 1e-9)


def _array_or_garbage() -> st.SearchStrategy[Array]:
    """A real array, or an ``Array`` whose bytes are not the array it claims to be."""
    real = any_array().map(Array)
    garbage = st.builds(
        lambda data, shape: Array(dtype="float64", shape=shape, stype="numpy.ndarray", data=data),
        st.binary(max_size=40),
        st.sampled_from([(2, 2), (3,)]),
    )
    return st.one_of(real, garbage)


metric_values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.lists(st.floats(allow_nan=False), max_size=3),
)


@st.composite
def hostile_content(draw: st.DrawFn) -> RecordDict:
    """A reply as a client could shape it: any records, any keys, any values."""
    content = RecordDict()
    if draw(st.booleans()):
        keys = draw(st.sampled_from([["0", "1"], ["a", "b"], ["0"], ["0", "1", "2"]]))
        content["arrays"] = ArrayRecord({k: draw(_array_or_garbage()) for k in keys})
    if draw(st.booleans()):
        metrics = draw(
            st.dictionaries(st.sampled_from(["loss", "num-examples", "x"]), metric_values)
        )
        content["metrics"] = MetricRecord(metrics)  # type: ignore[arg-type]
    if draw(st.booleans()):
        task = draw(st.sampled_from([TASK, "other", 3]))
        content["meta"] = ConfigRecord({"task": task})  # type: ignore[dict-item]
    if draw(st.booleans()):
        content[draw(st.sampled_from(["extra", "metrics2"]))] = MetricRecord({"y": 1.0})
    if draw(st.booleans()):
        content["arrays2"] = ArrayRecord([np.ones(3)])
    return content


def _message(content: RecordDict) -> Message:
    return Message(content, dst_node_id=0, message_type="train")


def _honest_content(value: float, examples: int) -> RecordDict:
    return RecordDict(
        {
            "arrays": ArrayRecord([np.full((2, 2), value), np.full(3, value)]),
            "metrics": MetricRecord({"num-examples": examples, "loss": 0.5}),
            "meta": ConfigRecord({"task": TASK}),
        }
    )


def _honest(value: float, examples: int) -> Message:
    return _message(_honest_content(value, examples))


@pytest.mark.usefixtures("flower_task")
@FUZZ
@given(content=hostile_content())
@example(  # bytes that are not an array (numpy's loader raised EOFError)
    content=RecordDict(
        {
            "arrays": ArrayRecord(
                {
                    "0": Array(np.ones((2, 2))),
                    "1": Array(dtype="float64", shape=(3,), stype="numpy.ndarray", data=b""),
                }
            ),
            "metrics": MetricRecord({"num-examples": 3}),
            "meta": ConfigRecord({"task": TASK}),
        }
    )
)
def test_reply_problem_never_raises(content: RecordDict) -> None:
    problem = reply_problem(_message(content), REFERENCE, TASK, 10.0)
    assert problem is None or isinstance(problem, str)


def _strategies() -> list[Strategy]:
    return [FedAvg(), FedTrimmedAvg(beta=0.2), FedMedian(), Krum(num_malicious_nodes=1)]


def _extra_metric() -> RecordDict:
    content = _honest_content(1.0, 5)
    content.metric_records["metrics"]["extra"] = 1.0
    return content


def _extra_record() -> RecordDict:
    content = _honest_content(1.0, 5)
    content["extra"] = MetricRecord({"y": 1.0})
    return content


def _renamed_arrays() -> RecordDict:
    content = _honest_content(1.0, 5)
    content["arrays"] = ArrayRecord({"a": Array(np.ones((2, 2))), "b": Array(np.ones(3))})
    return content


@pytest.mark.usefixtures("flower_task")
@FUZZ
@given(hostile=st.lists(hostile_content(), min_size=1, max_size=3), which=st.integers(0, 3))
@example(hostile=[_extra_metric()], which=0)  # different metric keys failed the round
@example(hostile=[_extra_record()], which=0)  # a second MetricRecord failed the round
@example(hostile=[_renamed_arrays()], which=0)  # other array keys failed the round
def test_one_hostile_reply_cannot_fail_a_round_of_honest_ones(
    hostile: list[RecordDict], which: int
) -> None:
    # Prepare: three honest clients and some hostile ones, behind the validating wrapper
    strategy = ValidatedStrategy(_strategies()[which], task=TASK, max_update_norm=10.0)
    strategy._reference = [a.copy() for a in REFERENCE]
    honest = [_honest(1.0, 10), _honest(1.0, 10), _honest(1.0, 10)]
    # Execute
    arrays, metrics = strategy.aggregate_train(1, honest + [_message(c) for c in hostile])
    # Assert: the round aggregates; accepted hostile replies are sound (finite, bounded)
    assert arrays is not None and metrics is not None
    merged = arrays.to_numpy_ndarrays()
    assert [a.shape for a in merged] == [(2, 2), (3,)]
    assert all(np.all(np.isfinite(a)) for a in merged)
    counted = [metrics["accepted-updates"], metrics["rejected-updates"]]
    assert sum(int(c) for c in counted if isinstance(c, int)) == 3 + len(hostile)


@pytest.mark.usefixtures("flower_task")
@FUZZ
@given(hostile=st.lists(hostile_content(), min_size=1, max_size=3))
def test_a_round_of_only_hostile_replies_fails_with_the_documented_error(
    hostile: list[RecordDict],
) -> None:
    strategy = ValidatedStrategy(FedAvg(), task=TASK, max_update_norm=10.0)
    strategy._reference = [a.copy() for a in REFERENCE]
    try:
        arrays, _ = strategy.aggregate_train(1, [_message(c) for c in hostile])
    except NoValidAggregateError:
        return
    assert arrays is not None


# -- bundle, delivery and manifest parsing ---------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
BUNDLE_KEYS = [
    "federation",
    "name",
    "node_id",
    "address",
    "ca_pem",
    "signing_public_pem",
    "node_private_key",
    "insecure",
]


@st.composite
def bundle_documents(draw: st.DrawFn) -> Any:
    """A bundle-shaped JSON document with any values (or anything else)."""
    if draw(st.booleans()):
        return draw(json_values)
    document: dict[str, Any] = {"format": BUNDLE_FORMAT}
    for key in BUNDLE_KEYS:
        if draw(st.integers(0, 9)):  # mostly present
            document[key] = draw(json_values)
    return document


@FUZZ
@given(document=bundle_documents(), raw=st.none() | st.binary(max_size=60))
@example(  # a certificate that is not text raised AttributeError
    document={
        "format": BUNDLE_FORMAT,
        **dict.fromkeys(BUNDLE_KEYS, "x"),
        "node_id": 1,
        "insecure": False,
        "ca_pem": 5,
    },
    raw=None,
)
def test_bundle_read_raises_only_aicache_error(
    tmp_path: Path, document: Any, raw: bytes | None
) -> None:
    path = tmp_path / "bundle.json"
    path.write_bytes(raw if raw is not None else json.dumps(document).encode())
    with contextlib.suppress(AicacheError):
        Bundle.read(path)


SIGNING_KEY = signing.new_signing_key()


@st.composite
def manifests(draw: st.DrawFn) -> bytes:
    """Manifest bytes: JSON objects near the real format, any JSON, or any bytes."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(st.binary(max_size=40))
    if choice == 1:
        return json.dumps(draw(json_values)).encode()
    document = {
        "format": draw(st.sampled_from([MANIFEST_FORMAT, "other"])),
        "task": draw(st.sampled_from([TASK, "../x", 3])),
        "version": draw(json_values),
        "sha256": draw(st.text(max_size=4)),
    }
    return json.dumps(document).encode()


@FUZZ
@given(manifest=manifests(), artifact=st.binary(max_size=60), sign=st.booleans())
@example(manifest=b"{not json", artifact=b"", sign=True)  # JSONDecodeError escaped
@example(manifest=b"\xff", artifact=b"", sign=True)  # UnicodeDecodeError escaped
def test_a_signed_or_forged_delivery_raises_only_aicache_error(
    tmp_path: Path, manifest: bytes, artifact: bytes, sign: bool
) -> None:
    signature = signing.sign(SIGNING_KEY, manifest) if sign else b"x" * 64
    delivery = Delivery(manifest=manifest, signature=signature, artifact=artifact)
    for attempt in (
        lambda: delivery.manifest_dict(),
        lambda: delivery.verify(SIGNING_KEY.public_key(), what="the fuzzed model"),
        lambda: Inbox(tmp_path / "inbox").put(delivery),
    ):
        with contextlib.suppress(AicacheError):
            attempt()


@FUZZ
@given(text=st.text(max_size=200) | json_values.map(json.dumps))
def test_an_inbox_file_of_any_text_is_refused_not_raised(tmp_path: Path, text: str) -> None:
    # Prepare: an inbox file with any content, next to a real registry
    (tmp_path / "inbox" / TASK).mkdir(parents=True, exist_ok=True)
    (tmp_path / "inbox" / TASK / "v1.json").write_text(text)
    # Execute
    with ModelRegistry(tmp_path / "registry") as registry:
        newest = NewestVerified(tmp_path / "verified.json")
        results = pull(Inbox(tmp_path / "inbox"), registry, SIGNING_KEY.public_key(), newest)
        # Assert: refused, and nothing installed
        assert [r.status for r in results] == ["refused"]
        assert registry.latest(TASK) is None


# -- history importers ------------------------------------------------------------

HISTORY_PIECES = [
    "ls",
    " -a",
    "git commit",
    "#1700000000",
    "#12",
    ": ",
    "1700000000",
    ":0;",
    "\\",
    "\n",
    "\r",
    "\t",
    "\x0c",
    "\x00",
    "é",
    "ÿ",
    "S ",
    "C ",
    "D ",
    "X ",
    "E ",
    "NIL",
    "- cmd: ",
    "  when: ",
    "Mon Jan  1 00:00:00 1987",
    "Sun Feb 30 25:61:61 99999",
]
history_text = st.lists(st.sampled_from(HISTORY_PIECES), max_size=40).map("".join)


@FUZZ
@given(
    data=st.binary(max_size=200) | history_text.map(str.encode),
    shell=st.sampled_from(["bash", "zsh", "fish"]),
)
@example(data=b": 99999999999999999999999999999999999999999999999:0;ls", shell="zsh")
@example(data=b"\xff\xfe ls\n", shell="bash")  # not UTF-8: read as Latin-1
def test_shell_history_files_of_any_bytes_parse_and_import(
    tmp_path: Path, data: bytes, shell: str
) -> None:
    # Prepare: a history file of any bytes
    path = tmp_path / "history"
    path.write_bytes(data)
    # Execute: what `aicache import` does with it
    commands = parse_history(read_text(path), shell)
    with Store.open(tmp_path / "home") as store:
        result = import_commands(store, commands, source=shell, origin="fuzz")
    # Assert
    assert all(c.line.strip() for c in commands)
    assert result.added + result.skipped == len(commands)


@FUZZ
@given(data=st.binary(max_size=300) | history_text.map(str.encode))
@example(data=b"S Mon Jan  1 00:00:00 0001\nC ls\n")  # a year-1 session start
def test_greenberg_traces_parse_or_raise_value_error(tmp_path: Path, data: bytes) -> None:
    # Prepare: one user's trace file of any bytes
    folder = tmp_path / "traces"
    folder.mkdir(exist_ok=True)
    (folder / "user1").write_bytes(data)
    # Execute / Assert: the parser raises ValueError only, the simulation source AicacheError
    try:
        commands = parse_greenberg(read_text(folder / "user1"))
    except ValueError:
        commands = []
    try:
        GreenbergSource(str(folder)).history(0)
    except AicacheError:
        assert not commands
    if commands:
        with Store.open(tmp_path / "home") as store:
            import_commands(store, commands, source="greenberg", origin="fuzz", user="user1")


# -- the registry loader ----------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=200))
@example(data=b"")  # numpy's loader raised EOFError
@example(data=encode_arrays([np.ones(3)])[:0] + b"\x93NUMPY\x01\x00v\x00")  # a bare .npy header
def test_artifact_bytes_decode_or_raise_artifact_error(data: bytes) -> None:
    try:
        arrays = decode_arrays(data)
    except ArtifactError:
        return
    assert all(isinstance(a, np.ndarray) for a in arrays)


def test_a_bare_npy_file_is_not_an_artifact() -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ones(3))
    with pytest.raises(ArtifactError, match="not a plain array archive"):
        decode_arrays(buffer.getvalue())


COLUMNS = ["strategy_config", "metrics", "privacy", "note", "sha256"]


@FUZZ
@given(column=st.sampled_from(COLUMNS), value=st.text(max_size=30) | st.binary(max_size=30))
@example(column="metrics", value="{not json")  # JSONDecodeError escaped from versions()
def test_a_damaged_registry_row_raises_only_aicache_error(
    tmp_path: Path, column: str, value: str | bytes
) -> None:
    # Prepare: a registry with one version, then one column of its row overwritten
    root = tmp_path / f"registry-{abs(hash((column, value)))}"
    with ModelRegistry(root) as registry:
        registry.register(
            TASK,
            [np.ones(3)],
            run_id="r",
            round=1,
            parent=None,
            strategy="fedavg",
            strategy_config={},
            num_clients=2,
            metrics={},
            privacy={"dp": "off"},
        )
    with sqlite3.connect(root / "registry.db") as conn:
        conn.execute(f"UPDATE versions SET {column} = ?", (value,))
    conn.close()
    # Execute / Assert
    with ModelRegistry(root) as registry:
        try:
            latest = registry.latest(TASK)
            for version in [*registry.versions(), *([latest] if latest else [])]:
                registry.load(version)
        except AicacheError:
            pass


@FUZZ
@given(data=st.binary(max_size=200))
def test_a_registry_file_of_any_bytes_opens_or_raises_aicache_error(
    tmp_path: Path, data: bytes
) -> None:
    root = tmp_path / f"registry-{sha256_hex(data)[:12]}"
    root.mkdir()
    (root / "registry.db").write_bytes(data)
    try:
        with ModelRegistry(root) as registry:
            registry.versions()
    except AicacheError:
        pass
