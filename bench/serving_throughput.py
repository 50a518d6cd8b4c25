"""POST /recommend under load: the BentoML service next to a bare FastAPI/uvicorn endpoint doing the same work.

Usage: .venv/bin/python bench/serving_throughput.py --home /tmp/demo-state3 [--tracking-uri URI]
           [--duration 20] [--warmup 5] [--connections 50] [--workers 1] [--bare engine,package]

One server at a time, each a real subprocess on a free 127.0.0.1 port, each given the same load:
- `bentoml`: `bentoml serve serving.service:RecommenderService` (OPTIMUM_SERVING_WORKERS=--workers);
- `bare-engine`: `uvicorn bench.bare_fastapi:app` (--workers) answering with serving.engine.RecommenderEngine,
  the code the service calls: the difference to `bentoml` is the framework alone;
- `bare-package`: the same app calling `RecommenderPackage.recommend(user_id, count)` per request.
Both stacks run uvicorn with uvloop and httptools and no access log.

Load: --connections keep-alive connections for --warmup s (discarded), then --duration s measured, POSTing
{"user_id", "count": --count} for users drawn at random from a fixed list: --users known users sampled from
the champion's `recommender.data.user_ids` plus --unknown-fraction never-seen ids (cold start). The load
generator is `wrk` (one thread, Lua script) when installed, else an asyncio + httpx client in this process
(which competes with the server for the CPU, so its numbers are a lower bound); the output says which.
Before the load, the same users are asked of every server and their JSON answers compared.

Reported per server: req/s, p50/p95/p99 latency (wrk's histogram), errors (socket errors + non-2xx),
CPU cores used by the server's processes, the load generator and everything else on the machine ("other":
on a shared box, a run with other > 0.3 cores is noisy), and server CPU per request (the least noisy number
for comparing frameworks). --rounds N repeats the sequence with fresh servers and reports medians.
--service serves a variant of the service (put its folder on PYTHONPATH) to measure a change before making
it; --py-spy PATH profiles each measured window into --profile-dir (raw flamegraph files; slows the servers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL_NAME = "optimum-recommender"
SERVICE = "serving.service:RecommenderService"
TARGET_RATIO = 0.8  # BentoML throughput >= 0.8x the bare endpoint's
TARGET_P99_MS = 50.0
READY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 20.0
CHECK_USERS = 20  # users whose answers are compared across servers


# --------------------------------------------------------------------------------------------- request mix


def request_bodies(tracking_uri: str, users: int, unknown_fraction: float, count: int, seed: int) -> list[str]:
    """JSON bodies: `users` known ids sampled from the champion plus a share of never-seen ids, shuffled."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    package = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion").unwrap_python_model()
    known = [str(u) for u in package.recommender.data.user_ids]
    rng = random.Random(seed)
    chosen = rng.sample(known, min(users, len(known)))
    unknown_n = round(len(chosen) * unknown_fraction / max(1e-9, 1 - unknown_fraction))
    chosen += [f"bench-unknown-{i:05d}" for i in range(unknown_n)]
    rng.shuffle(chosen)
    print(f"request mix: {len(chosen) - unknown_n} known users (of {len(known)}) + {unknown_n} unknown, count={count}")
    return [json.dumps({"user_id": user, "count": count}) for user in chosen]


# ------------------------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(kind: str, port: int, args: argparse.Namespace) -> list[str]:
    if kind == "bentoml":
        return [str(BIN / "bentoml"), "serve", args.service, "--host", "127.0.0.1", "--port", str(port)]
    return [
        str(BIN / "uvicorn"), "bench.bare_fastapi:app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(args.workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def server_env(kind: str, args: argparse.Namespace) -> dict[str, str]:
    env = os.environ | {
        "OPTIMUM_HOME": args.home,
        "OPTIMUM_MLFLOW_TRACKING_URI": args.tracking_uri,
        "OPTIMUM_SERVING_WORKERS": str(args.workers),
        "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    if kind.startswith("bare-"):
        env["OPTIMUM_BENCH_BARE_SCORING"] = kind.removeprefix("bare-")
    return env


class Server:
    """One server subprocess in its own session, so the whole process group can be stopped."""

    def __init__(self, kind: str, args: argparse.Namespace, log_dir: Path, tag: str):
        self.kind, self.port = kind, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{tag}.log"
        self._log = self.log_path.open("wb")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            server_command(kind, self.port, args),
            cwd=REPO_ROOT,
            env=server_env(kind, args),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> float:
        deadline = self.started + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{self.kind} not ready on {self.url} after {READY_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> dict[int, float]:
        seconds = {}
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                seconds[proc.pid] = times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return seconds

    def rss_mb(self) -> float:
        total = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total / 2**20

    def log_tail(self, chars: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """SIGTERM to the server process; SIGKILL, by pid, to whatever it started that outlives it.

        BentoML's arbiter (circus) starts its workers in sessions of their own, so a process-group signal
        would miss them: the descendants are listed before the arbiter is told to stop."""
        descendants = self.processes()[1:]
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        _, alive = psutil.wait_procs(descendants, timeout=STOP_TIMEOUT_S)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self._log.close()


# ---------------------------------------------------------------------------------------- load generators

WRK_SCRIPT = """
local bodies = %(bodies)s
local requests = {}
init = function(args)
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "/recommend", {["Content-Type"] = "application/json"}, body)
  end
  math.randomseed(%(seed)d)
end
request = function()
  return requests[math.random(#requests)]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, ' ..
    '"timeout": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_wrk(url: str, bodies: list[str], connections: int, seconds: float, seed: int, work: Path) -> dict:
    script = work / "recommend.lua"
    script.write_text(WRK_SCRIPT % {"bodies": "{" + ",".join(map(lua_string, bodies)) + "}", "seed": seed})
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script), url,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    return {
        "requests": raw["requests"],
        "seconds": raw["duration_us"] / 1e6,
        "errors": errors,
        "error_detail": {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]},
        "p50_ms": raw["p50_us"] / 1e3,
        "p95_ms": raw["p95_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3,
        "max_ms": raw["max_us"] / 1e3,
    }


async def _python_load(url: str, bodies: list[str], connections: int, seconds: float, seed: int) -> dict:
    rng = random.Random(seed)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                body = bodies[rng.randrange(len(bodies))]
                sent = time.perf_counter()
                try:
                    response = await client.post("/recommend", content=body, headers=headers)
                    key = None if response.status_code == 200 else f"status {response.status_code}"
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                if key is None:
                    latencies.append(time.perf_counter() - sent)
                else:
                    errors[key] = errors.get(key, 0) + 1

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), timeout=seconds + 30)
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e3 if latencies else float("nan")

    return {
        "requests": len(latencies) + sum(errors.values()),
        "seconds": elapsed,
        "errors": sum(errors.values()),
        "error_detail": errors,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": latencies[-1] * 1e3 if latencies else float("nan"),
    }


def run_load(
    generator: str, url: str, bodies: list[str], connections: int, seconds: float, seed: int, work: Path
) -> dict:
    if generator == "wrk":
        return run_wrk(url, bodies, connections, seconds, seed, work)
    return asyncio.run(_python_load(url, bodies, connections, seconds, seed))


# ------------------------------------------------------------------------------------------------- driver


def check_answers(url: str, bodies: list[str]) -> list[dict]:
    answers = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for body in bodies:
            response = client.post("/recommend", content=body, headers={"Content-Type": "application/json"})
            if response.status_code != 200:
                raise RuntimeError(f"{url}/recommend {body} -> {response.status_code}: {response.text[:500]}")
            answers.append(response.json())
    return answers


def start_py_spy(py_spy: str, server: Server, seconds: float, out: Path) -> subprocess.Popen:
    """Sample the server (and its worker processes) for `seconds`: a raw flamegraph file per server."""
    command = [
        py_spy, "record", "--pid", str(server.process.pid), "--subprocesses", "--nonblocking", "--rate", "200",
        "--duration", str(max(1, round(seconds))), "--format", "raw", "--output", str(out),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def busy_cpu() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def bench_one(kind: str, args: argparse.Namespace, bodies: list[str], generator: str, work: Path, tag: str) -> dict:
    server = Server(kind, args, args.log_dir or work, tag)
    try:
        ready_s = server.wait_ready()
        answers = check_answers(server.url, bodies[:CHECK_USERS])
        run_load(generator, server.url, bodies, args.connections, args.warmup, args.seed, work)
        spy = None
        if args.py_spy:
            args.profile_dir.mkdir(parents=True, exist_ok=True)
            spy = start_py_spy(args.py_spy, server, args.duration - 1, args.profile_dir / f"{tag}.raw")
        before = (server.cpu_seconds(), children_cpu(), self_cpu(), busy_cpu(), time.perf_counter())
        result = run_load(generator, server.url, bodies, args.connections, args.duration, args.seed + 1, work)
        after = (server.cpu_seconds(), children_cpu(), self_cpu(), busy_cpu(), time.perf_counter())
        wall = after[4] - before[4]
        server_cpu = sum(after[0][pid] - before[0].get(pid, 0.0) for pid in after[0]) / wall
        loadgen_cpu = ((after[1] - before[1]) if generator == "wrk" else (after[2] - before[2])) / wall
        if spy is not None:
            spy.wait(timeout=60)
        result.update(
            kind=kind,
            rps=result["requests"] / result["seconds"],
            server_cpu_cores=server_cpu,
            cpu_us_per_request=server_cpu * wall * 1e6 / max(1, result["requests"]),
            loadgen_cpu_cores=loadgen_cpu,
            # Everything else the machine ran meanwhile (other jobs on a shared box; py-spy if asked for).
            other_cpu_cores=max(0.0, (after[3] - before[3]) / wall - server_cpu - loadgen_cpu),
            ready_s=ready_s,
            rss_mb=server.rss_mb(),
            answers=answers,
        )
        return result
    finally:
        server.stop()


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=os.environ.get("OPTIMUM_HOME", ".optimum"), help="OPTIMUM_HOME of the store")
    parser.add_argument("--tracking-uri", help="MLflow store (default: sqlite under HOME/mlflow/mlflow.db)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds of the same load first")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="worker processes of every server (same for all)")
    parser.add_argument("--bare", default="engine,package", help="bare variants: engine, package, both or none")
    parser.add_argument(
        "--service",
        default=SERVICE,
        help="what `bentoml serve` serves (a variant on PYTHONPATH, to measure a change before making it)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat the sequence (fresh servers each time)")
    parser.add_argument("--users", type=int, default=1000, help="known users sampled from the champion")
    parser.add_argument("--unknown-fraction", type=float, default=0.1, help="share of requests for unknown users")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--py-spy", help="py-spy binary: profile every measured window (slows the servers)")
    parser.add_argument("--profile-dir", type=Path, default=Path("serving-bench-profiles"))
    parser.add_argument("--log-dir", type=Path, help="keep the servers' output here (default: deleted)")
    parser.add_argument("--json-out", type=Path, help="write the results here as JSON too")
    args = parser.parse_args()
    args.home = str(Path(args.home).expanduser().resolve())
    args.tracking_uri = args.tracking_uri or f"sqlite:///{Path(args.home) / 'mlflow' / 'mlflow.db'}"
    bare = [f"bare-{name.strip()}" for name in args.bare.split(",") if name.strip() not in ("", "none")]
    if not set(bare) <= {"bare-engine", "bare-package"}:
        parser.error("--bare takes engine, package, engine,package or none")
    if args.duration < 2 or args.warmup < 1 or args.rounds < 1:
        parser.error("--duration >= 2, --warmup >= 1, --rounds >= 1")

    generator = args.loadgen
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    elif generator == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install -y wrk), use --loadgen python")
    print(
        f"load generator: {generator}" + (" (1 thread, Lua script)" if generator == "wrk" else
        " (asyncio + httpx in this process: it competes with the server for CPU, numbers are a lower bound)")
    )  # fmt: skip
    print(
        f"store: {args.home} ({args.tracking_uri}); {args.connections} connections, {args.warmup:g} s warm-up + "
        f"{args.duration:g} s measured per server, {args.rounds} round(s); {args.workers} worker process(es) per "
        f"server; {os.cpu_count()} CPUs; loopback only" + ("; PROFILED with py-spy" if args.py_spy else "")
    )
    bodies = request_bodies(args.tracking_uri, args.users, args.unknown_fraction, args.count, args.seed)

    kinds = ["bentoml", *bare]
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="optimum-serving-bench-") as tmp:
        work = Path(tmp)
        if args.log_dir:
            args.log_dir.mkdir(parents=True, exist_ok=True)
        for round_ in range(1, args.rounds + 1):
            for kind in kinds:
                result = bench_one(kind, args, bodies, generator, work, f"{kind}-{round_}")
                runs[kind].append(result)
                print(
                    f"round {round_} {kind}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
                    f"p95 {result['p95_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms, "
                    f"errors {result['errors']} {result['error_detail'] or ''}, {result['requests']} requests in "
                    f"{result['seconds']:.1f} s; CPU cores: server {result['server_cpu_cores']:.2f}, load generator "
                    f"{result['loadgen_cpu_cores']:.2f}, other {result['other_cpu_cores']:.2f}; server CPU per request "
                    f"{result['cpu_us_per_request']:.0f} us; RSS "
                    f"{result['rss_mb']:.0f} MB; ready after {result['ready_s']:.1f} s",
                    flush=True,
                )

    reference = runs["bentoml"][0]["answers"]
    for kind in bare:
        same = all(r["answers"] == reference for r in runs[kind])
        print(
            f"answers of {kind} for {CHECK_USERS} users (user_id, model_version, cold_start, items) "
            f"equal bentoml's: {same}"
        )

    summary = {
        kind: {
            key: median([r[key] for r in rs])
            for key in (
                "rps",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "server_cpu_cores",
                "cpu_us_per_request",
                "loadgen_cpu_cores",
                "other_cpu_cores",
            )  # fmt: skip
        }
        | {"errors": sum(r["errors"] for r in rs), "requests": sum(r["requests"] for r in rs)}
        for kind, rs in runs.items()
    }
    label = "median of rounds" if args.rounds > 1 else "one round"
    print(f"\n{label}:\n| server | workers | req/s | p50 | p95 | p99 | errors | server CPU | CPU/request | other CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind, m in summary.items():
        print(
            f"| {kind} | {args.workers} | {m['rps']:.0f} | {m['p50_ms']:.1f} ms | {m['p95_ms']:.1f} ms | "
            f"{m['p99_ms']:.1f} ms | {m['errors']} | {m['server_cpu_cores']:.2f} cores | "
            f"{m['cpu_us_per_request']:.0f} us | {m['other_cpu_cores']:.2f} cores |"
        )
    bento = summary["bentoml"]
    print()
    if any(m["loadgen_cpu_cores"] >= 0.9 for m in summary.values()):
        print("WARNING: the load generator used a whole core: these numbers measure the client, not the servers")
    for kind in bare:
        ratio = bento["rps"] / summary[kind]["rps"]
        print(
            f"bentoml / {kind} throughput: {ratio:.2f}x "
            f"(target >= {TARGET_RATIO}x: {'met' if ratio >= TARGET_RATIO else 'MISSED'})"
        )
    print(
        f"bentoml p99 {bento['p99_ms']:.1f} ms at {args.connections} connections (target <= {TARGET_P99_MS:g} ms: "
        f"{'met' if bento['p99_ms'] <= TARGET_P99_MS else 'MISSED'}); bentoml errors: {bento['errors']}"
    )
    if args.json_out:
        slim = {kind: [{k: v for k, v in r.items() if k != "answers"} for r in rs] for kind, rs in runs.items()}
        args.json_out.write_text(
            json.dumps(
                {"args": {k: str(v) for k, v in vars(args).items()}, "generator": generator, "runs": slim,
                 "summary": summary},
                indent=2,
            )
        )  # fmt: skip


if __name__ == "__main__":
    main()
