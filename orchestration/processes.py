"""Servers the CLI starts (Dagster, MLflow UI, BentoML) run in their own process group and die with the CLI.

Each of them forks workers of its own (`dagster dev` a webserver and a daemon, `mlflow ui` a uvicorn,
`bentoml serve` its workers), and none of them is guaranteed to pass a SIGTERM on. So the CLI signals the
whole group: stopping the wrapper, by Ctrl-C or by `kill`, stops every process it started and frees the
ports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 20.0


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    command: Sequence[str]
    env: Mapping[str, str] | None = None


def start(server: Server, cwd: Path, log: Path | None = None) -> subprocess.Popen:
    """Start a server as the leader of a new process group (so the group can be signalled as one); its
    output goes to `log` when given, else to this process's."""
    if log is None:
        return subprocess.Popen(list(server.command), cwd=cwd, env=server.env, start_new_session=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            list(server.command), cwd=cwd, env=server.env, start_new_session=True, stdout=output, stderr=output
        )


def _group_alive(process: subprocess.Popen) -> bool:
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we cannot signal still exists
        return True
    return True


def stop(process: subprocess.Popen, signum: int = signal.SIGTERM, grace_s: float = GRACE_SECONDS) -> None:
    """Signal the whole group and wait for it to be gone; SIGKILL whatever outlives the grace period."""
    _signal_group(process, signum)
    if not _wait_gone(process, grace_s):
        _signal_group(process, signal.SIGKILL)
        _wait_gone(process, 5.0)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _wait_gone(process: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while process.poll() is None or _group_alive(process):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def run_until_stopped(servers: Sequence[Server], cwd: Path) -> int:
    """Run the servers until one exits or this process gets SIGINT/SIGTERM; then stop them all.

    Returns 0 when stopped by a signal, else the exit status of the server that ended first.
    """
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in STOP_SIGNALS}
    processes: list[subprocess.Popen] = []
    ended = None
    try:
        processes = [start(server, cwd) for server in servers]
        while not received and ended is None:
            ended = next((p for p in processes if p.poll() is not None), None)
            time.sleep(0.2)
    finally:
        for process in processes:
            stop(process, received[0] if received else signal.SIGTERM)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if received or ended is None else ended.returncode
