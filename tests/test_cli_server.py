"""Operator commands that need no running SuperLink: bad input gets a message."""

from __future__ import annotations

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.e2e


@pytest.mark.needs_extra("server")
def test_a_config_value_that_is_not_a_number_is_named(cli: Cli) -> None:
    # Prepare
    root = cli.cwd / "fed"
    assert cli.run("server", "init", str(root), "--port", "19321").returncode == 0
    config = root / "aicache-server.toml"
    config.write_text(config.read_text().replace("rounds = 10", 'rounds = "ten"'))
    # Execute
    result = cli.run("server", "run", str(root))
    # Assert
    text = result.stderr.decode()
    assert result.returncode == 2
    assert "training.rounds = 'ten'" in text and "is not a finite number" in text
    assert "Traceback" not in text


def test_an_address_without_a_port_is_named(cli: Cli) -> None:
    root = cli.cwd / "fed"
    assert cli.run("server", "init", str(root), "--port", "19322").returncode == 0
    config = root / "aicache-server.toml"
    text = config.read_text()
    start = text.index("address = ")
    end = text.index("\n", start)
    config.write_text(text[:start] + 'address = "fl.example.internal"' + text[end:])
    result = cli.run("server", "nodes", str(root))
    assert result.returncode == 2
    assert "has no port" in result.stderr.decode() and b"Traceback" not in result.stderr


@pytest.mark.needs_extra("server")
def test_a_config_value_that_is_not_finite_is_named(cli: Cli) -> None:
    root = cli.cwd / "fed"
    assert cli.run("server", "init", str(root), "--port", "19324").returncode == 0
    config = root / "aicache-server.toml"
    config.write_text(config.read_text().replace("clip = 1.0", "clip = nan"))
    result = cli.run("server", "run", str(root))
    text = result.stderr.decode()
    assert result.returncode == 2
    assert "privacy.clip = nan" in text and "is not a finite number" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--host", "bad host!"), "--host 'bad host!' is not a DNS name or an IP address"),
        (("--host", "a..b"), "--host 'a..b' is not a DNS name or an IP address"),
        (("--host", "-x.example"), "--host '-x.example' is not a DNS name or an IP address"),
        (("--name", "../x"), "invalid federation name '../x'"),
        (("--name", "acme\n"), "invalid federation name 'acme\\n'"),
    ],
)
def test_server_init_refuses_a_bad_host_or_name(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    root = cli.cwd / "fed"
    result = cli.run("server", "init", str(root), *args)
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert not root.exists()  # no config, no certificate


def test_server_init_takes_dns_names_and_addresses(cli: Cli) -> None:
    root = cli.cwd / "fed"
    hosts = ("fl.example.internal", "192.0.2.10", "2001:db8::1", "node-1")
    args = [arg for host in hosts for arg in ("--host", host)]
    result = cli.run("server", "init", str(root), "--name", "acme.fl", *args)
    assert result.returncode == 0, result.stderr.decode()
    assert 'address = "fl.example.internal:9092"' in (root / "aicache-server.toml").read_text()
