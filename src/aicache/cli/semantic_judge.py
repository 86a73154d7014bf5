"""``aicache semantic``: the semantic-hit decision, judged on pairs of one's own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from aicache.errors import AicacheError

app = typer.Typer(
    help="Semantic hits: judge whether a cached prompt answers a reworded question.",
    no_args_is_help=True,
)

TASK = "semantic-hit"


def _model_version(model: str) -> int | None:
    """``latest`` (what this node serves) as ``None``, else a version number."""
    if model == "latest":
        return None
    if not model.isdigit() or int(model) < 1:
        raise AicacheError(
            f"--model {model!r}: not 'latest' nor a version number",
            hint=f"Give latest, or a version `aicache models list --task {TASK}` shows.",
        )
    return int(model)


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """The ``text_a<TAB>text_b`` lines of ``path``, in order.

    Raises
    ------
    AicacheError
        Naming the file, or the first line that is not two non-empty texts.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AicacheError(f"--pairs {path}: no such file") from None
    except UnicodeDecodeError:
        raise AicacheError(f"--pairs {path}: not UTF-8 text") from None
    except OSError as exc:
        raise AicacheError(f"--pairs {path}: cannot be read: {exc.strerror or exc}") from None
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise AicacheError(
                f"--pairs {path}: line {number} is not two texts separated by one tab",
                hint="Write one pair a line: text_a<TAB>text_b.",
            )
        pairs.append((fields[0].strip(), fields[1].strip()))
    if not pairs:
        raise AicacheError(f"--pairs {path}: the file has no pair", hint="Write text_a<TAB>text_b.")
    return pairs


@app.command("judge")
def judge(
    pairs: Annotated[
        Path, typer.Option("--pairs", help="A file of text_a<TAB>text_b lines.", show_default=False)
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model", help="latest (the model this node serves) or a registry version number."
        ),
    ] = "latest",
) -> None:
    """Score each pair: prints score<TAB>decision a line (1: the cache would serve it)."""
    from aicache.deploy.serving import served_model
    from aicache.features.embedding import load_embedder
    from aicache.local.paths import aicache_home
    from aicache.tasks.semantic_hit.decision import load_pair_decision

    version = _model_version(model)
    lines = read_pairs(pairs)
    load_embedder()  # a missing extra is named before anything else is loaded
    served = served_model(TASK, aicache_home(), version)
    for judgement in load_pair_decision(served.params).judge_pairs(lines):
        sys.stdout.write(f"{judgement.score:.4f}\t{int(judgement.serve)}\n")


def register(typer_app: typer.Typer) -> None:
    """Add the ``semantic`` group to ``typer_app``."""
    typer_app.add_typer(app, name="semantic")
