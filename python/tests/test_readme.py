"""The README's Python quick start runs exactly as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_quick_start_runs_as_written(node: str, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the README has a Python quick start"
    lines = block.group(1).splitlines()
    assert lines[0].startswith("python3 -m venv venv && venv/bin/pip install ./python")
    # The venv and the install are this test run's own environment; the
    # program after them is run as written.
    program = "\n".join(lines[2:]).rsplit("PY", 1)[0]
    result = subprocess.run(
        [sys.executable, "-c", program],
        env={**os.environ, "AGENTRAIL_NODE": node},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"paid 2\.50 USD: entry \d+ of a log of \d+, verified\n", result.stdout)
