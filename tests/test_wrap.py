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
