"""The CLI's server commands: stopping the wrapper stops what it started, and a missing state is an error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from orchestration.cli import main

OPTIMUM = str(Path(sys.executable).with_name("optimum"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _descendants(pid: int) -> set[int]:
    """Every living process below pid, from /proc (ppid is the field after the parenthesised name)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_wrapper_stops_the_server_and_frees_its_port(tmp_path, stop_signal):
    home = tmp_path / "state"
    MlflowClient(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}").search_experiments()  # an existing, empty store
    port = _free_port()
    env = os.environ | {"OPTIMUM_HOME": str(home), "OPTIMUM_MLFLOW_TRACKING_URI": ""}
    wrapper = subprocess.Popen(
        [OPTIMUM, "mlflow-ui", "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300  # a loaded CI machine
        while True:
            assert wrapper.poll() is None, f"the wrapper exited with {wrapper.returncode}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the MLflow UI never answered"
                time.sleep(0.5)
        children = _descendants(wrapper.pid)
        assert children, "the server runs in a child process"
        wrapper.send_signal(stop_signal)
        assert wrapper.wait(timeout=60) == 0
    finally:
        if wrapper.poll() is None:  # the test failed before the signal: stop it the way a user would
            wrapper.terminate()
            wrapper.wait(timeout=60)
    assert f"MLflow UI    http://127.0.0.1:{port}" in wrapper.stdout.read()
    assert not [pid for pid in children if _alive(pid)], "no child outlives the wrapper"
    assert _port_is_free(port)


@pytest.mark.parametrize(
    "command",
    [
        ["summary"],
        ["quarantine"],
        ["up", "--port", "1"],
        ["serve", "--port", "1"],
        ["mlflow-ui", "--port", "1"],
        ["ui"],
    ],
)
def test_a_command_pointed_at_a_missing_state_says_so_and_creates_nothing(tmp_path, monkeypatch, capsys, command):
    home = tmp_path / "no-state-here"
    monkeypatch.setenv("OPTIMUM_HOME", str(home))
    monkeypatch.setenv("OPTIMUM_TARGET", "duckdb")
    monkeypatch.setenv("OPTIMUM_MLFLOW_TRACKING_URI", "")
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    error = capsys.readouterr().err
    assert f"no Optimum state at {home}" in error and "make demo" in error
    assert not home.exists()
