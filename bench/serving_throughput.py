"""POST /recommend under load: the BentoML service next to a bare FastAPI/uvicorn endpoint doing the same work.

Usage: .venv/bin/python bench/serving_throughput.py --home .optimum [--tracking-uri URI] [--duration 10]
           [--warmup 2] [--rounds 3] [--servers bentoml:1,bare-engine:1,bentoml:2,bare-engine:2]
           [--scenarios closed-50:50:0,users-500:500:1000,overload-500:500:0]

Servers (--servers KIND:WORKERS, each a real subprocess on a free 127.0.0.1 port, all started first and
then measured in turn, so every comparison is interleaved in time):
- `bentoml`: `bentoml serve serving.service:RecommenderService` (OPTIMUM_SERVING_WORKERS=WORKERS), in
  production mode: every request carries a token (made in a throw-away OPTIMUM_HOME by the code behind
  `optimum token create`) and passes the rate limiter (set to 1,000,000/s), the admission bound
  (OPTIMUM_SERVING_MAX_IN_FLIGHT, its default unless set) and the JSON request log;
- `bare-engine`: `uvicorn bench.bare_fastapi:app` answering with serving.engine.RecommenderEngine, the code
  the service calls, and the same durable prediction log, behind FastAPI's own body and response models
  (no token, no rate limit, no admission bound, no request log);
- `bare-package`: the same app ranking with the package's recommender per request.
Both stacks run uvicorn with uvloop and httptools and no access log.

Scenarios (--scenarios NAME:CONNECTIONS:THINK_MS[:retry]): wrk (one thread, Lua script) keeps CONNECTIONS
keep-alive connections, each a user waiting a random 0.5-1.5x THINK_MS between requests (wrk's `delay()`,
not counted as latency; 0: a closed loop), first --warmup s (discarded), then --duration s measured. A
client asks again at once after a 503, unless `retry`: then it waits 0.5-1.5x the answer's Retry-After.
Each round runs every scenario against every server, the server order reversed every other round; the
tables report the median round. Bodies are {"user_id", "count": --count} for --users known users sampled
from the champion plus --unknown-fraction never-seen ids (cold start). Before the load, 20 users are asked
of every server and their JSON answers compared (the per-answer request_id aside).

Reported per server and scenario: req/s (all answers) and 200s/s, p50/p95/p99/max/mean latency (wrk's
histogram, all answers), socket errors (connect/read/write/timeouts at wrk's 10 s), 503 answers (shed by
the admission bound, with Retry-After) and other non-2xx, the CPU cores used by the server's processes, by
wrk and by everything else on the machine ("other": on a shared box, a run with other > 0.3 cores is
noisy), server CPU per request (the least noisy number for comparing frameworks) and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL_NAME = "optimum-recommender"
SERVICE = "serving.service:RecommenderService"
TARGET_RATIO = 0.9  # BentoML throughput >= 0.9x the bare endpoint's
TARGET_P99_MS = 30.0
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


def server_command(kind: str, workers: int, port: int, args: argparse.Namespace) -> list[str]:
    if kind == "bentoml":
        return [str(BIN / "bentoml"), "serve", args.service, "--host", "127.0.0.1", "--port", str(port)]
    return [
        str(BIN / "uvicorn"), "bench.bare_fastapi:app", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def server_env(kind: str, workers: int, args: argparse.Namespace, home: Path) -> dict[str, str]:
    """Production mode: every request needs the bench token (in `home`); the rate limit is on, set high."""
    env = os.environ | {
        "OPTIMUM_HOME": str(home),
        "OPTIMUM_ENVIRONMENT": "production",
        "OPTIMUM_MLFLOW_TRACKING_URI": args.tracking_uri,
        "OPTIMUM_SERVING_WORKERS": str(workers),
        "OPTIMUM_SERVING_RATE_PER_SECOND": "1000000",
        "OPTIMUM_SERVING_RATE_BURST": "1000000",
        "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    if kind.startswith("bare-"):
        env["OPTIMUM_BENCH_BARE_SCORING"] = kind.removeprefix("bare-")
    return env


class Server:
    """One server subprocess in its own session, so the whole process group can be stopped."""

    def __init__(self, kind: str, workers: int, args: argparse.Namespace, home: Path, log_dir: Path, tag: str):
        self.kind, self.workers, self.port = kind, workers, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{tag}.log"
        self._log = self.log_path.open("wb")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            server_command(kind, workers, self.port, args),
            cwd=REPO_ROOT,
            env=server_env(kind, workers, args, home),
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


# ---------------------------------------------------------------------------------------- load generator

WRK_SCRIPT = """
local bodies = %(bodies)s
local think_ms = %(think_ms)d
local requests = {}
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
end
init = function(args)
  ok, shed = 0, 0
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s"}
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "/recommend", headers, body)
  end
  math.randomseed(%(seed)d)
end
request = function()
  return requests[math.random(#requests)]
end
local honor_retry = %(honor_retry)s
local owed = {}  -- Retry-After delays (ms) owed after 503s, first in first out
if think_ms > 0 or honor_retry then
  -- a user waits 0.5x to 1.5x the think time between two requests (wrk does not count it as latency);
  -- a client honouring Retry-After waits that long after a 503 instead. wrk's Lua cannot tell which
  -- connection a delay() is for, so the owed waits go to the next connections to send: the number of
  -- waits is exact, which connection serves each is approximate.
  delay = function()
    if #owed > 0 then return table.remove(owed, 1) end
    if think_ms > 0 then return math.random(think_ms / 2, think_ms * 3 / 2) end
    return 0
  end
end
response = function(status, headers, body)
  if status == 200 then
    ok = ok + 1
  elseif status == 503 then
    shed = shed + 1
    if honor_retry then
      local seconds = tonumber(headers["retry-after"] or headers["Retry-After"] or "1") or 1
      table.insert(owed, math.random(seconds * 500, seconds * 1500))
    end
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  local ok_total, shed_total = 0, 0
  for _, thread in ipairs(threads) do
    ok_total = ok_total + thread:get("ok")
    shed_total = shed_total + thread:get("shed")
  end
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, ' ..
    '"timeout": %%d, "ok": %%d, "shed": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d, ' ..
    '"mean_us": %%f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, ok_total, shed_total,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Scenario:
    """`connections` keep-alive connections, each a user waiting about `think_ms` between requests and,
    with `honor_retry`, about Retry-After after a 503 (else it asks again at once)."""

    name: str
    connections: int
    think_ms: int
    honor_retry: bool = False

    @classmethod
    def parse(cls, text: str) -> Scenario:
        name, connections, think_ms, *flags = text.split(":")
        if flags not in ([], ["retry"]):
            raise ValueError(f"scenario {text!r}: NAME:CONNECTIONS:THINK_MS[:retry]")
        return cls(name, int(connections), int(think_ms), honor_retry=bool(flags))


def run_wrk(url: str, bodies: list[str], scenario: Scenario, seconds: float, seed: int, token: str, work: Path) -> dict:
    script = work / "recommend.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "bodies": "{" + ",".join(map(lua_string, bodies)) + "}",
            "seed": seed,
            "think_ms": scenario.think_ms,
            "honor_retry": "true" if scenario.honor_retry else "false",
            "token": token,
        }
    )
    command = [
        "wrk", "-t1", f"-c{scenario.connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s",
        str(script), url,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    return {
        "requests": raw["requests"],
        "seconds": raw["duration_us"] / 1e6,
        "socket_errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        "ok": raw["ok"],
        "shed_503": raw["shed"],
        "other_non_2xx": raw["status"] - raw["shed"],
        "error_detail": {k: raw[k] for k in ("connect", "read", "write", "timeout") if raw[k]},
        "p50_ms": raw["p50_us"] / 1e3,
        "p95_ms": raw["p95_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3,
        "max_ms": raw["max_us"] / 1e3,
        "mean_ms": raw["mean_us"] / 1e3,
    }


# ------------------------------------------------------------------------------------------------- driver


def check_answers(url: str, bodies: list[str], token: str) -> list[dict]:
    """The answers for `bodies`, without their request_id (a new one per answer, by design)."""
    answers = []
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=10) as client:
        for body in bodies:
            response = client.post("/recommend", content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{url}/recommend {body} -> {response.status_code}: {response.text[:500]}")
            answers.append({k: v for k, v in response.json().items() if k != "request_id"})
    return answers


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busy_cpu() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def measure(server: Server, scenario: Scenario, args: argparse.Namespace, bodies: list[str], token: str, work: Path):
    """One warm-up and one measured wrk run of `scenario` against `server`."""
    run_wrk(server.url, bodies, scenario, args.warmup, args.seed, token, work)
    load = os.getloadavg()[0]
    before = (server.cpu_seconds(), children_cpu(), busy_cpu(), time.perf_counter())
    result = run_wrk(server.url, bodies, scenario, args.duration, args.seed + 1, token, work)
    after = (server.cpu_seconds(), children_cpu(), busy_cpu(), time.perf_counter())
    wall = after[3] - before[3]
    server_cpu = sum(after[0][pid] - before[0].get(pid, 0.0) for pid in after[0]) / wall
    loadgen_cpu = (after[1] - before[1]) / wall
    result.update(
        kind=server.kind,
        workers=server.workers,
        scenario=scenario.name,
        rps=result["requests"] / result["seconds"],
        ok_rps=result["ok"] / result["seconds"],
        server_cpu_cores=server_cpu,
        cpu_us_per_request=server_cpu * wall * 1e6 / max(1, result["requests"]),
        loadgen_cpu_cores=loadgen_cpu,
        # Everything else the machine ran meanwhile (other engineers' jobs on a shared box).
        other_cpu_cores=max(0.0, (after[2] - before[2]) / wall - server_cpu - loadgen_cpu),
        load_average=load,
        rss_mb=server.rss_mb(),
    )
    print(
        f"{server.kind} x{server.workers} {scenario.name} ({scenario.connections} conns, think {scenario.think_ms} "
        f"ms): {result['rps']:.0f} req/s ({result['ok_rps']:.0f} 200s/s), p50 {result['p50_ms']:.1f} ms, p95 "
        f"{result['p95_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms, mean "
        f"{result['mean_ms']:.1f} ms, socket errors {result['socket_errors']}, 503 {result['shed_503']}, other "
        f"non-2xx {result['other_non_2xx']}; CPU cores: server {server_cpu:.2f}, wrk {loadgen_cpu:.2f}, other "
        f"{result['other_cpu_cores']:.2f}; {result['cpu_us_per_request']:.0f} us server CPU per request; load "
        f"{load:.1f}; RSS {result['rss_mb']:.0f} MB",
        flush=True,
    )
    return result


def median_round(rounds: list[dict]) -> dict:
    """The round with the median req/s (a whole round, so its percentiles belong together), plus the spread."""
    ordered = sorted(rounds, key=lambda r: r["rps"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["rps_range"] = (ordered[0]["rps"], ordered[-1]["rps"])
    chosen["cpu_us_median"] = sorted(r["cpu_us_per_request"] for r in rounds)[(len(rounds) - 1) // 2]
    return chosen


def bench_token(home: Path) -> str:
    """A predict token in the servers' throw-away home, created the way `optimum token create` does."""
    from serving.auth import FileTokenStore, create_token

    return create_token(FileTokenStore(home / "api_tokens.json"), "bench", "predict")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=os.environ.get("OPTIMUM_HOME", ".optimum"), help="OPTIMUM_HOME of the store")
    parser.add_argument("--tracking-uri", help="MLflow store (default: sqlite under HOME/mlflow/mlflow.db)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds of the same load first")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median round is reported")
    parser.add_argument(
        "--servers",
        default="bentoml:1,bare-engine:1,bentoml:2,bare-engine:2",
        help="KIND:WORKERS,... with KIND bentoml, bare-engine or bare-package, measured in turn",
    )
    parser.add_argument(
        "--scenarios",
        default="closed-50:50:0,users-500:500:1000,overload-500:500:0",
        help="NAME:CONNECTIONS:THINK_MS[:retry],...: think 0 is a closed loop (no pause between requests); "
        "retry: clients wait Retry-After after a 503",
    )
    parser.add_argument("--service", default=SERVICE, help="what `bentoml serve` serves")
    parser.add_argument("--users", type=int, default=1000, help="known users sampled from the champion")
    parser.add_argument("--unknown-fraction", type=float, default=0.1, help="share of requests for unknown users")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log-dir", type=Path, help="keep the servers' output here (default: deleted)")
    parser.add_argument("--json-out", type=Path, help="write the results here as JSON too")
    args = parser.parse_args()
    args.home = str(Path(args.home).expanduser().resolve())
    args.tracking_uri = args.tracking_uri or f"sqlite:///{Path(args.home) / 'mlflow' / 'mlflow.db'}"
    servers = [(kind, int(workers)) for kind, workers in (item.split(":") for item in args.servers.split(","))]
    if not {kind for kind, _ in servers} <= {"bentoml", "bare-engine", "bare-package"}:
        parser.error("--servers kinds are bentoml, bare-engine and bare-package")
    scenarios = [Scenario.parse(item) for item in args.scenarios.split(",")]
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install -y wrk)")
    print(
        f"store: {args.tracking_uri}; {args.warmup:g} s warm-up + {args.duration:g} s measured per scenario; "
        f"{os.cpu_count()} CPUs; loopback; load generator wrk (1 thread, Lua); production mode (token + rate limit)"
    )
    bodies = request_bodies(args.tracking_uri, args.users, args.unknown_fraction, args.count, args.seed)
    rounds: dict[tuple[str, int, str], list[dict]] = {}
    answers: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="optimum-serving-bench-") as tmp:
        work = Path(tmp)
        token = bench_token(work / "home")
        if args.log_dir:
            args.log_dir.mkdir(parents=True, exist_ok=True)
        started: list[Server] = []
        try:
            for kind, workers in servers:
                started.append(Server(kind, workers, args, work / "home", args.log_dir or work, f"{kind}-{workers}w"))
            for server in started:
                print(f"{server.kind} x{server.workers} ready in {server.wait_ready():.1f} s", flush=True)
                answers[(server.kind, server.workers)] = check_answers(server.url, bodies[:CHECK_USERS], token)
            for number in range(args.rounds):
                print(f"round {number + 1} of {args.rounds}, load average {os.getloadavg()}", flush=True)
                order = started if number % 2 == 0 else started[::-1]
                for scenario in scenarios:
                    for server in order:
                        result = measure(server, scenario, args, bodies, token, work)
                        rounds.setdefault((server.kind, server.workers, scenario.name), []).append(result)
        finally:
            for server in started:
                server.stop()

    results = [median_round(found) for found in rounds.values()]
    reference = next(iter(answers.values()))
    same = all(found == reference for found in answers.values())
    print(f"\nanswers for {CHECK_USERS} users (all but request_id) equal everywhere: {same}")
    print(f"median of {args.rounds} interleaved rounds (req/s range over the rounds in brackets)")
    print(
        "| scenario | server | workers | req/s | 200s/s | p50 | p95 | p99 | max | mean | socket err | 503 | "
        "other non-2xx | CPU/req | other CPU | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for scenario in scenarios:
        for r in (r for r in results if r["scenario"] == scenario.name):
            low, high = r["rps_range"]
            print(
                f"| {scenario.name} | {r['kind']} | {r['workers']} | {r['rps']:,.0f} ({low:,.0f}-{high:,.0f}) | "
                f"{r['ok_rps']:,.0f} | {r['p50_ms']:.1f} ms | {r['p95_ms']:.1f} ms | {r['p99_ms']:.1f} ms | "
                f"{r['max_ms']:,.0f} ms | {r['mean_ms']:.1f} ms | {r['socket_errors']} | {r['shed_503']} | "
                f"{r['other_non_2xx']} | {r['cpu_us_median']:.0f} us | {r['other_cpu_cores']:.2f} | "
                f"{r['load_average']:.1f} |"
            )
    by_key = {(r["kind"], r["workers"], r["scenario"]): r for r in results}
    first = scenarios[0].name
    bento, bare = by_key.get(("bentoml", 1, first)), by_key.get(("bare-engine", 1, first))
    if bento and bare:
        paired = [
            a["rps"] / b["rps"]
            for a, b in zip(rounds[("bentoml", 1, first)], rounds[("bare-engine", 1, first)], strict=True)
        ]
        shown = ", ".join(f"{r:.2f}" for r in paired)
        print(f"\n{first}, 1 worker, bentoml / bare-engine req/s per interleaved round: {shown}")
        ratio = sorted(paired)[(len(paired) - 1) // 2]
        cpu_ratio = bare["cpu_us_median"] / bento["cpu_us_median"]
        print(
            f"{first}, 1 worker: bentoml / bare-engine throughput, median round, {ratio:.2f}x (target >= "
            f"{TARGET_RATIO}x: "
            f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}); by server CPU per request {cpu_ratio:.2f}x; bentoml "
            f"p99 {bento['p99_ms']:.1f} ms (target <= {TARGET_P99_MS:g} ms: "
            f"{'met' if bento['p99_ms'] <= TARGET_P99_MS else 'MISSED'})"
        )
    if args.json_out:
        every = [r for found in rounds.values() for r in found]
        settings = {k: str(v) for k, v in vars(args).items()}
        args.json_out.write_text(json.dumps({"args": settings, "medians": results, "runs": every}, indent=2))


if __name__ == "__main__":
    main()
