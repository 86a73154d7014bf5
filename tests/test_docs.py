"""Every command and every setting is documented in the README (Datasette's ``test_docs``).

The command tree is walked from the Typer application itself, and the settings
are read from ``aicache.local.settings.SETTINGS``: a new command or setting
fails here until the README's "Commands and settings" tables have its row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import typer

from aicache.cli.app import app
from aicache.local.settings import SETTINGS

README = Path(__file__).resolve().parents[1] / "README.md"
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def command_paths(command: click.Command, path: tuple[str, ...]) -> Iterator[str]:
    """``aicache group command`` for every command a user can run, groups walked."""
    if command.hidden:
        return
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from command_paths(sub, (*path, name))
    else:
        yield " ".join(path)


def table_rows(text: str, heading: str) -> dict[str, list[str]]:
    """The rows of the table under ``heading``: first cell's code text -> the other cells."""
    rows: dict[str, list[str]] = {}
    inside = False
    for line in text.splitlines():
        if line.startswith("#"):
            inside = line.strip() == heading
        elif inside and (row := _ROW.match(line)):
            rows[row.group(1)] = [cell.strip() for cell in row.group(2).split("|")]
    return rows


def _cli_commands() -> list[str]:
    return list(command_paths(typer.main.get_command(app), ("aicache",)))


def test_every_command_has_a_row_in_the_readme() -> None:
    # Prepare
    documented = table_rows(README.read_text(), "### Commands")
    # Execute
    missing = [path for path in _cli_commands() if path not in documented]
    stale = sorted(set(documented) - set(_cli_commands()))
    # Assert
    assert missing == [], f"README.md's Commands table has no row for {missing}"
    assert stale == [], f"README.md's Commands table lists {stale}, which aicache does not have"


def test_every_setting_has_a_row_with_its_default_in_the_readme() -> None:
    # Prepare
    documented = table_rows(README.read_text(), "### Settings")
    # Execute
    missing = [name for name in SETTINGS if name not in documented]
    wrong_default = [
        f"{name}: README says {documented[name][0]!r}, the default is {setting.default!r}"
        for name, setting in SETTINGS.items()
        if name in documented and documented[name][0] != (setting.default or "(none)")
    ]
    stale = sorted(set(documented) - set(SETTINGS))
    # Assert
    assert missing == [], f"README.md's Settings table has no row for {missing}"
    assert wrong_default == [], "\n".join(wrong_default)
    assert stale == [], f"README.md's Settings table lists {stale}, which are not settings"


def test_the_walk_reaches_nested_commands_and_skips_hidden_ones() -> None:
    # Prepare
    group = click.Group("aicache")
    sub = click.Group("models")
    sub.add_command(click.Command("show"))
    sub.add_command(click.Command("secret", hidden=True))
    group.add_command(sub)
    group.add_command(click.Command("run"))
    # Execute
    paths = list(command_paths(group, ("aicache",)))
    # Assert
    assert paths == ["aicache models show", "aicache run"]


def test_the_table_reader_keeps_to_its_heading() -> None:
    text = "### Settings\n\n| a | b |\n|---|---|\n| `x` | 1 | one |\n\n### Other\n| `y` | 2 |\n"
    assert table_rows(text, "### Settings") == {"x": ["1", "one"]}
