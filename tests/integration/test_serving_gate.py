"""The request gate on a real `bentoml serve` in production mode: tokens and scopes, the rate limit, CORS,
request ids and the JSON log, bodies that must not cost memory, and /metrics that must not grow.

One server for the module (tokens required, a low rate limit, one CORS origin). Tokens are made with the
real `optimum token create` command and, for the rest, the same function; each test uses its own token,
so the per-token buckets do not interfere.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from ml.packaging import RECOMMENDER_MODEL_NAME
from serving.auth import FileTokenStore, create_token
from tests.serving_fixtures import build_model_store, running_server, server_env

RATE_BURST = 20
ORIGIN = "https://shop.example.com"
MAX_BODY = 64 * 1024
INTERACTIONS_MAX_BODY = 512 * 1024  # a batch of 1,000 events is about 150 KB


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gate-home")


@pytest.fixture(scope="module")
def cli_token(home) -> str:
    """A predict token made by the CLI, as an operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIMUM_")} | {"OPTIMUM_HOME": str(home)}
    optimum = Path(sys.executable).parent / "optimum"
    result = subprocess.run(
        [str(optimum), "token", "create", "shop-frontend", "--scope", "predict"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    token = result.stdout.strip()
    assert token.startswith("opt_") and "only time" in result.stderr
    assert token not in (home / "api_tokens.json").read_text()
    return token


def token(home: Path, scope: str = "predict") -> str:
    return create_token(FileTokenStore(home / "api_tokens.json"), f"t-{uuid.uuid4().hex[:8]}", scope)


@pytest.fixture(scope="module")
def server(home, cli_token, tmp_path_factory):
    store = build_model_store(tmp_path_factory.mktemp("gate-store"))
    env = server_env(
        home,
        store.tracking_uri,
        OPTIMUM_ENVIRONMENT="production",
        OPTIMUM_SERVING_RATE_PER_SECOND="1",
        OPTIMUM_SERVING_RATE_BURST=str(RATE_BURST),
        OPTIMUM_SERVING_CORS_ORIGINS=ORIGIN,
        OPTIMUM_SERVING_REFRESH_SECONDS="0",
        OPTIMUM_SERVING_INTERACTIONS_MAX_BODY_BYTES=str(INTERACTIONS_MAX_BODY),
    )
    with running_server(env, tmp_path_factory.mktemp("logs") / "gate-server.log", timeout=300) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def log_lines(server) -> list[dict]:
    lines = server.log.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith('{"event":"request"')]


# --- who may call ---------------------------------------------------------------------------------------


def test_tokens_are_required_and_scoped(client, home, cli_token):
    body = {"user_id": "U001", "count": 2}
    assert client.post("/recommend", json=body, headers=bearer(cli_token)).status_code == 200
    for headers, status, reason in [
        ({}, 401, "token is required"),
        (bearer("opt_forged"), 401, "invalid API token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "invalid API token"),
        (bearer(token(home, "interactions")), 403, "needs 'predict'"),
    ]:
        response = client.post("/recommend", json=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        assert reason in response.json()["error"]
    assert client.post("/search", json={"q": "brakes"}, headers=bearer(token(home, "admin"))).status_code == 200
    for path in ("/livez", "/readyz", "/metrics"):  # the orchestrator's probes stay open
        assert client.get(path).status_code == 200, path


def test_a_token_created_while_serving_works_at_once(client, home):
    late = token(home)
    assert client.post("/recommend", json={"user_id": "U001"}, headers=bearer(late)).status_code == 200


def test_rate_limit_answers_429_with_retry_after(client, home):
    headers = bearer(token(home))
    statuses = [client.post("/recommend", json={"user_id": "U002"}, headers=headers) for _ in range(RATE_BURST + 5)]
    codes = [response.status_code for response in statuses]
    assert codes[:RATE_BURST].count(200) >= RATE_BURST - 2  # the burst (a second may refill one or two)
    limited = [response for response in statuses if response.status_code == 429]
    assert limited, codes
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert "rate limit" in limited[0].json()["error"]
    other = bearer(token(home))  # another token has its own bucket
    assert client.post("/recommend", json={"user_id": "U002"}, headers=other).status_code == 200


def test_cors_allow_list(client, home):
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}  # fmt: skip
    allowed = client.options("/recommend", headers=preflight)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    refused = client.options("/recommend", headers=preflight | {"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in refused.headers
    # A refusal still carries CORS headers, so the page can read why.
    response = client.post("/recommend", json={"user_id": "U001"}, headers={"Origin": ORIGIN})
    assert response.status_code == 401 and response.headers["access-control-allow-origin"] == ORIGIN


def events(n: int, tag: str) -> list[dict]:
    return [
        {"event_id": f"{tag}-{i}", "user_id": f"U{i % 30:03d}", "product_id": "P001", "interaction_type": "view"}
        for i in range(n)
    ]


def test_interactions_need_a_token_of_their_scope(client, home):
    body = {"events": events(3, "scope")}
    for headers, status, reason in [
        ({}, 401, "token is required"),
        (bearer("opt_forged"), 401, "invalid API token"),
        (bearer(token(home, "predict")), 403, "needs 'interactions'"),
    ]:
        response = client.post("/interactions", json=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json" and reason in response.json()["error"]
    recorded = client.post("/interactions", json=body, headers=bearer(token(home, "interactions")))
    assert recorded.status_code == 202 and recorded.json()["accepted"] == 3
    again = client.post("/interactions", json=body, headers=bearer(token(home, "admin")))
    assert again.status_code == 202 and again.json()["duplicates"] == 3


def test_interactions_take_a_full_batch_and_refuse_a_bigger_body(server, client, home):
    headers = bearer(token(home, "interactions"))
    full = json.dumps({"events": events(1000, "full")}).encode()
    assert MAX_BODY < len(full) < INTERACTIONS_MAX_BODY
    response = client.post("/interactions", content=full, headers=headers | {"Content-Type": "application/json"})
    assert response.status_code == 202 and response.json()["accepted"] == 1000, response.text[:500]
    too_many = client.post("/interactions", json={"events": events(1001, "over")}, headers=headers)
    assert too_many.status_code == 400 and "at most 1000" in too_many.json()["error"]
    declared = declare_length(server.url, "/interactions", INTERACTIONS_MAX_BODY + 1, headers)
    assert declared.startswith(b"HTTP/1.1 413") and f"{INTERACTIONS_MAX_BODY} bytes".encode() in declared
    sent, answer = send_chunked(server.url, headers | {"Content-Type": "application/json"}, 256 << 20, "/interactions")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert sent < 64 << 20, "the server kept reading the body"


def logged_request_ids(home: Path) -> list[str]:
    folder = home / "landing" / "prediction_log"
    return [json.loads(line)["request_id"] for path in folder.iterdir() for line in path.read_text().splitlines()]


def test_request_id_and_json_log(client, server, home):
    secret = token(home)
    response = client.post("/recommend", json={"user_id": "U003"}, headers=bearer(secret) | {"X-Request-ID": "req-42"})
    assert response.headers["x-request-id"] == "req-42" == response.json()["request_id"]
    # The same question again: answered from the response cache, under its own id, and logged too.
    again = client.post("/recommend", json={"user_id": "U003"}, headers=bearer(secret))
    generated = again.headers["x-request-id"]
    assert len(generated) == 32 and again.json()["request_id"] == generated
    assert again.json()["items"] == response.json()["items"] and again.json()["lineage"] == response.json()["lineage"]
    assert {"req-42", generated} <= set(logged_request_ids(home))
    odd = client.post("/recommend", json={}, headers=bearer(secret) | {"X-Request-ID": "x" * 500})
    assert odd.headers["x-request-id"] != "x" * 500  # not echoed: a fresh id instead
    time.sleep(0.5)
    lines = {line["request_id"]: line for line in log_lines(server)}
    line = lines["req-42"]
    assert line["route"] == "/recommend" and line["status"] == 200 and line["method"] == "POST"
    assert line["model_version"] == "1" and line["latency_ms"] > 0
    assert line["token"] is not None and line["token"].startswith("t-")
    assert lines[generated]["token"] == line["token"]
    assert secret not in server.log.read_text()


# --- bounded work per request ---------------------------------------------------------------------------


def worker(server) -> psutil.Process:
    """The biggest process under the server (the worker holding the models)."""
    root = psutil.Process(server.process.pid)
    return max([root, *root.children(recursive=True)], key=lambda proc: proc.memory_info().rss)


def reset_peak_rss(proc: psutil.Process) -> int:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS, so a passing spike is seen; returns it."""
    Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
    return peak_rss(proc)


def peak_rss(proc: psutil.Process) -> int:
    """The most memory the process held since the last reset (VmHWM), in bytes: a freed spike still counts."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{proc.pid}/status")


def send_chunked(
    url: str, headers: dict[str, str], total: int, path: str = "/recommend", chunk: int = 1 << 20
) -> tuple[int, bytes]:
    """POST `total` bytes of chunked body; returns (bytes the server let us send, its answer)."""
    host, port = url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{head}\r\n".encode())
        piece = f"{chunk:x}\r\n".encode() + b"[" + b" " * (chunk - 1) + b"\r\n"
        try:
            while sent < total:
                sock.sendall(piece)
                sent += chunk
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while chunk_in := sock.recv(65536):
                answer += chunk_in
        except (ConnectionResetError, TimeoutError):
            pass
    return sent, answer


def test_a_huge_chunked_body_is_refused_without_reading_it(server, home):
    headers = {"Content-Type": "application/json"} | bearer(token(home))
    process = worker(server)
    before = reset_peak_rss(process)
    total = 1 << 30  # 1 GiB offered
    sent, answer = send_chunked(server.url, headers, total)
    after = peak_rss(process)
    print(f"chunked 1 GiB offer: {sent / 2**20:.0f} MiB accepted by the socket; worker RSS "
          f"{before / 2**20:.0f} MiB before, peak {after / 2**20:.0f} MiB during and after")  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"too large" in answer
    assert sent < 64 << 20, "the server kept reading the body"
    assert after - before < 16 << 20


def declare_length(url: str, path: str, length: int, headers: dict[str, str]) -> bytes:
    """The answer to a POST that declares `length` bytes of body and sends none of them."""
    host, port = url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
            f"{head}\r\n".encode()
        )
        return read_answer(sock)


def read_answer(sock: socket.socket) -> bytes:
    """Headers and the whole body of one HTTP answer (they may arrive in separate packets)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536) or b"\r\n\r\n"  # a closed connection ends the headers
    head, _, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    while length and len(body) < int(length.group(1)) and (chunk := sock.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def test_declared_oversized_body_is_refused_before_reading(server, home):
    host, port = server.url.removeprefix("http://").split(":")
    process = worker(server)
    before = reset_peak_rss(process)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {1 << 30}\r\n"
            f"Authorization: Bearer {token(home)}\r\n\r\n".encode()
        )
        answer = sock.recv(65536)  # answered with no body byte sent
        assert answer.startswith(b"HTTP/1.1 413")
        try:  # the body the client then sends anyway is not read: the server closed the connection
            for _ in range(256):
                sock.sendall(b"x" * (1 << 20))
        except (BrokenPipeError, ConnectionResetError):
            pass
    after = peak_rss(process)
    print(f"declared 1 GiB body: worker RSS {before / 2**20:.0f} MiB before, peak {after / 2**20:.0f} MiB after")
    assert after - before < 16 << 20


def test_chunked_bodies_within_the_limit_are_answered(server, home):
    headers = {"Content-Type": "application/json"} | bearer(token(home))

    def parts():
        yield b'{"user_id": '
        yield b'"U001", "count": 3}'

    response = httpx.post(server.url + "/recommend", content=parts(), headers=headers, timeout=30)
    assert response.status_code == 200 and len(response.json()["items"]) == 3
    response = httpx.post(
        server.url + "/recommend", content=(b" " * 1024 for _ in range(100)), headers=headers, timeout=30
    )
    assert response.status_code == 413


def test_only_json_is_accepted(client, home):
    headers = bearer(token(home))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml", None):
        extra = {"Content-Type": content_type} if content_type else {}
        response = client.post("/recommend", content=b'{"user_id": "U001"}', headers=headers | extra)
        assert response.status_code == 415, (content_type, response.text)
        assert "application/json" in response.json()["error"]
    charset = {"Content-Type": "application/json; charset=utf-8"}
    assert client.post("/recommend", content=b'{"user_id": "U001"}', headers=headers | charset).status_code == 200


# --- metrics --------------------------------------------------------------------------------------------


def metric_lines(client) -> list[str]:
    return [line for line in client.get("/metrics").text.splitlines() if line and not line.startswith("#")]


def test_metrics_stay_flat_under_random_paths(client, server):
    for _ in range(5):  # the collapsed label exists once any unknown path was seen
        client.get(f"/{uuid.uuid4().hex}")
    before = metric_lines(client)
    for _ in range(1000):
        path = f"/{uuid.uuid4().hex}/{uuid.uuid4().hex[:6]}"
        assert client.request("GET" if len(path) % 2 else "POST", path).status_code in (404, 405)
    after = metric_lines(client)
    size = len(client.get("/metrics").content)
    print(f"/metrics: {len(before)} -> {len(after)} series after 1,000 random paths ({size} bytes)")
    assert len(after) == len(before)
    endpoints = set(re.findall(r'endpoint="([^"]*)"', "\n".join(after)))
    assert "/{other}" in endpoints
    assert endpoints <= {"/{other}", "/", "/docs.json", "/recommend", "/similar_items", "/forecast", "/insights",
                         "/search", "/interactions", "/livez", "/readyz", "/healthz",
                         "/metrics"}, endpoints  # fmt: skip


def test_metrics_show_the_served_versions_and_a_histogram_per_route(client, cli_token):
    client.post("/recommend", json={"user_id": "U001"}, headers=bearer(cli_token))
    text = client.get("/metrics").text
    assert f'optimum_served_model_version{{model="{RECOMMENDER_MODEL_NAME}",version="1"}} 1.0' in text
    assert 'bentoml_service_request_duration_seconds_bucket{endpoint="/recommend"' in text
