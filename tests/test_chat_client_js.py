"""The browser client's decisions (tests/js/chat_client.test.js), run by node's own test
runner against the shipped chat.js: node is already needed for the accessibility checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

TESTS = Path(__file__).resolve().parent / "js"


def test_the_chat_client_passes_its_node_tests() -> None:
    node = shutil.which("node")
    assert node, "node is needed (make test installs axe-core with npm)"
    done = subprocess.run(
        [node, "--test", str(TESTS)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout
