"""Shims route a real tool through the cache without recursing into themselves."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FAKE_AI, Cli

pytestmark = pytest.mark.e2e


def test_wrapped_tool_goes_through_the_cache(cli: Cli, tmp_path: Path) -> None:
    # Prepare: the real tool in one directory, shims in another that comes first on PATH.
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    shutil.copy(FAKE_AI, real_dir / "claude")
    bin_dir = tmp_path / "shims"
    path = os.pathsep.join([str(bin_dir), str(real_dir), cli.env["PATH"]])
    # Execute
    wrapped = cli.run("wrap", "claude", "--bin-dir", str(bin_dir), PATH=path)
    env = {**cli.env, "PATH": path}
    calls = [
        subprocess.run(
            ["claude", "-p", "hi"], env=env, capture_output=True, check=False, timeout=60
        )
        for _ in range(2)
    ]
    # Assert
    assert wrapped.returncode == 0, wrapped.stderr
    assert [c.returncode for c in calls] == [0, 0]
    assert calls[0].stdout == calls[1].stdout
    assert b"Answer to: -p hi" in calls[0].stdout
    assert cli.invocations() == 1
    # Execute / Assert: unwrap restores the real tool
    assert cli.run("unwrap", "claude", "--bin-dir", str(bin_dir)).returncode == 0
    assert not (bin_dir / "claude").exists()
    assert (real_dir / "claude").exists()


def test_wrap_refuses_a_missing_tool_and_a_real_file(cli: Cli, tmp_path: Path) -> None:
    bin_dir = tmp_path / "shims"
    bin_dir.mkdir()
    missing = cli.run("wrap", "no-such-tool", "--bin-dir", str(bin_dir))
    assert missing.returncode == 2 and b"not found on PATH" in missing.stderr
    (bin_dir / "fake-ai").write_text("#!/bin/sh\necho mine\n")
    clash = cli.run("wrap", "fake-ai", "--bin-dir", str(bin_dir))
    assert clash.returncode == 2 and b"--force" in clash.stderr
    assert (bin_dir / "fake-ai").read_text() == "#!/bin/sh\necho mine\n"
    not_shim = cli.run("unwrap", "fake-ai", "--bin-dir", str(bin_dir))
    assert not_shim.returncode == 2
    assert (bin_dir / "fake-ai").exists()


def test_wrap_says_what_to_do_when_the_real_tool_comes_first(cli: Cli, tmp_path: Path) -> None:
    # Prepare: the shim directory is on PATH, but after the real tool's.
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    shutil.copy(FAKE_AI, real_dir / "claude")
    bin_dir = tmp_path / "shims"
    behind = os.pathsep.join([str(real_dir), str(bin_dir), cli.env["PATH"]])
    # Execute
    late = cli.run("wrap", "claude", "--bin-dir", str(bin_dir), PATH=behind)
    missing = os.pathsep.join([str(real_dir), cli.env["PATH"]])
    absent = cli.run("wrap", "claude", "--bin-dir", str(bin_dir), PATH=missing)
    # Assert: not "Wrapped", but why the shim will not run and the line that fixes it.
    assert late.returncode == absent.returncode == 1
    assert b"Wrapped" not in late.stdout + absent.stdout
    late_text = late.stderr.decode()
    assert f"{real_dir / 'claude'} comes before {bin_dir} on PATH" in late_text
    assert f'export PATH="{bin_dir}:$PATH"' in late_text
    assert f"{bin_dir} is not on PATH" in absent.stderr.decode()
    assert (bin_dir / "claude").exists()  # installed all the same: fixing PATH is enough


def test_wrap_reports_a_folder_it_cannot_write(cli: Cli, tmp_path: Path) -> None:
    # Prepare: a folder that cannot be written (a system folder when running as root),
    # and a --bin-dir below a regular file.
    if os.geteuid() == 0:
        read_only = Path("/sys/aicache-shims")
    else:
        read_only = tmp_path / "read-only"
        read_only.mkdir()
        read_only.chmod(0o555)
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me\n")
    # Execute
    results = [
        cli.run("wrap", "fake-ai", "--bin-dir", str(directory))
        for directory in (read_only, a_file / "bin", a_file)
    ]
    # Assert
    for result in results:
        assert result.returncode == 2
        assert b"Traceback" not in result.stderr
        assert b"cannot write a shim in" in result.stderr
        assert b"--bin-dir" in result.stderr
    assert a_file.read_text() == "keep me\n"


def test_a_wrapped_tool_outside_the_table_passes_through_until_marked(
    cli: Cli, tmp_path: Path
) -> None:
    # Prepare
    bin_dir = tmp_path / "shims"
    path = os.pathsep.join([str(bin_dir), cli.env["PATH"]])
    env = {**cli.env, "PATH": path}
    wrapped = cli.run("wrap", "fake-ai", "--bin-dir", str(bin_dir), PATH=path)

    def call(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["fake-ai", *args], env=env, capture_output=True, timeout=60)

    # Execute: unmarked, every call runs; then mark `fake-ai ask` cacheable.
    unmarked = [call("ask", "q") for _ in range(2)]
    marked = cli.run("config", "set", "cacheable", "fake-ai ask, other-tool")
    cached = [call("ask", "q") for _ in range(2)]
    other = [call("tell", "q") for _ in range(2)]
    # Assert
    assert wrapped.returncode == 0 and b"not in the adapter table" in wrapped.stdout
    assert marked.returncode == 0
    assert all(r.returncode == 0 for r in (*unmarked, *cached, *other))
    assert cli.invocations() == 2 + 1 + 2


def test_a_bad_cacheable_mark_is_refused(cli: Cli) -> None:
    result = cli.run("config", "set", "cacheable", "/usr/bin/tool ask")
    assert result.returncode == 2
    assert b"program name" in result.stderr
    assert b"Traceback" not in result.stderr
