"""`make run`'s key step: one API key per machine, made the first time, shown only then."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _make(cwd: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPDESK_")}
    return subprocess.run(
        ["make", "-s", "-f", str(REPO / "Makefile"), "api-key", f"BIN={bin_dir}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_key_made_once_and_kept_private(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "loopdesk"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m loopdesk "$@"\n')
    launcher.chmod(0o755)

    first = _make(tmp_path, bin_dir)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "loopdesk.db.api-key"
    key = key_file.read_text().strip()
    assert key.startswith("ld_") and key in first.stdout
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only

    again = _make(tmp_path, bin_dir)
    assert again.returncode == 0, again.stderr
    assert key not in again.stdout and "loopdesk.db.api-key" in again.stdout
    assert key_file.read_text().strip() == key  # not replaced

    # the database it was valid in is gone: a new key for the new database
    (tmp_path / "loopdesk.db").unlink()
    fresh = _make(tmp_path, bin_dir)
    assert fresh.returncode == 0, fresh.stderr
    assert key_file.read_text().strip() not in ("", key)
