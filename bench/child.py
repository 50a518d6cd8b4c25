"""A benchmark step in a fresh child process: its own imports, memory and CPU accounting, never the parent's."""

from __future__ import annotations

import json
import subprocess


def json_row(command: list[str], **kwargs) -> tuple[dict | None, str]:
    """Run `command`; (the JSON object it printed last, "") or, when it failed, (None, its last stderr line)."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        return None, " ".join(done.stderr.strip().splitlines()[-1:])
    return json.loads(done.stdout.strip().splitlines()[-1]), ""
