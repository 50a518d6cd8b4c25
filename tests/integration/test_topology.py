"""The production topology of docker-compose.yml as real processes on 127.0.0.1.

Each service's command and environment are read from docker-compose.yml and only the container-specific
values are mapped to local ones (host names to 127.0.0.1, container ports to free ports, volume paths to
temporary folders). PostgreSQL databases and roles come from infra/postgres/init.sh run against the local
server with unique names. Then: `refresh_everything` is launched through the webserver's GraphQL API, the
daemon dequeues it and the code server runs it; the marts are checked in PostgreSQL, the champions through
the MLflow server, the nightly_backup schedule's tick as evaluated by the daemon (its run backs up all three
databases), and a prediction of the BentoML service that read its champions from the MLflow server, asked
with a token made by `optimum token create` (production refuses a request without one).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import psycopg2
import pytest
import yaml
from grpc_health.v1 import health_pb2
from grpc_health.v1.health_pb2_grpc import HealthStub
from mlflow import MlflowClient

from ml.packaging import FORECASTER_MODEL_NAME, RECOMMENDER_MODEL_NAME
from tests.conftest import ADMIN_DSN, _admin_connection
from tests.serving_fixtures import free_port
from tests.unit.test_deployment_files import COMPOSE, REPO, SERVICES, env_of, interpolate

pytestmark = [pytest.mark.integration, pytest.mark.topology]

BIN = Path(sys.executable).parent
ANCHORS = {"dagster": "x-dagster-env", "optimum": "x-optimum-env"}
LOCATION = {"repositoryLocationName": "optimum", "repositoryName": "__repository__"}


@dataclass
class Local:
    """The local stand-ins for what the containers see."""

    tmp: Path
    ports: dict[str, int]  # service -> local port
    dotenv: dict[str, str]  # what .env would hold: unique roles, databases, passwords
    landing: Path  # the landing volume: the generated demo's landing folder

    @property
    def paths(self) -> dict[str, Path]:
        """Container path -> local folder (the volumes and baked-in files)."""
        return {
            "/opt/dagster/dagster_home": self.tmp / "dagster_home",
            "/opt/dagster/workspace.yaml": self.tmp / "workspace.yaml",
            "/opt/optimum/state": self.tmp / "state",
            "/opt/optimum/landing": self.landing,
            "/opt/optimum/backups": self.tmp / "backups",
            "/mlartifacts": self.tmp / "mlartifacts",
        }

    def text(self, value: str) -> str:
        """A compose string with every container-specific value mapped."""
        value = interpolate(value, self.dotenv)
        for part, db in (("DAGSTER", "dagster"), ("WAREHOUSE", "warehouse"), ("MLFLOW", "mlflow")):
            value = value.replace(f"@postgres:5432/{db}", f"@postgres:5432/{self.dotenv[f'{part}_PG_DB']}")
        for service in ("postgres", "mlflow", "user_code"):
            container_port = {"postgres": 5432, "mlflow": 5000, "user_code": 4000}[service]
            value = value.replace(f"@{service}:{container_port}/", f"@127.0.0.1:{self.ports[service]}/")
            value = value.replace(f"//{service}:{container_port}", f"//127.0.0.1:{self.ports[service]}")
        for container, local in self.paths.items():
            value = value.replace(container, str(local))
        return value

    def command(self, service: str) -> list[str]:
        """The service's compose command: 0.0.0.0 -> 127.0.0.1, its port -> a free one, paths -> local."""
        command = [self.text(word) for word in SERVICES[service]["command"]]
        for index, word in enumerate(command[:-1]):
            if word in ("-h", "--host") and command[index + 1] == "0.0.0.0":
                command[index + 1] = "127.0.0.1"
            if word in ("-p", "--port"):
                command[index + 1] = str(self.ports[service])
        assert not any(word.startswith("/opt/") for word in command), command
        return [str(BIN / command[0]), *command[1:]]

    def env(self, service: str, **extra: str) -> dict[str, str]:
        declared = {name: self.text(value) for name, value in env_of(service).items()}
        if "DAGSTER_PG_HOST" in declared:  # the instance's connection as separate fields
            declared |= {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(self.ports["postgres"])}
            declared["DAGSTER_PG_DB"] = self.dotenv["DAGSTER_PG_DB"]
        if service == "mlflow":
            declared["MLFLOW_SERVER_ALLOWED_HOSTS"] = f"127.0.0.1:{self.ports['mlflow']},localhost"
        # Under `make test` coverage would follow every service and forked step (COVERAGE_PROCESS_CONFIG): it
        # adds about two minutes here and nothing to the figure, since the rest of the suite runs the same code.
        prefixes = ("OPTIMUM_", "DAGSTER_", "MLFLOW_", "COVERAGE_")
        base = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        return base | declared | {"MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true"} | extra


def test_compose_declares_what_this_test_maps():
    """The mapping above covers every host name and container path the compose services use."""
    for name in ("user_code", "dagster_webserver", "dagster_daemon", "mlflow", "bentoml"):
        assert SERVICES[name]["image"] == "optimum:latest"
    assert set(ANCHORS.values()) <= set(COMPOSE)
    local = Local(Path("/local"), dict.fromkeys(("postgres", *SERVICES), 1), _dotenv("x"), Path("/landing"))
    for name in ("user_code", "dagster_webserver", "dagster_daemon", "mlflow", "bentoml"):
        for value in [*SERVICES[name]["command"], *env_of(name).values()]:
            mapped = local.text(value)
            assert "/opt/" not in mapped and "@postgres:" not in mapped and "//mlflow:" not in mapped, value


# --- processes ------------------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def start(name: str, command: list[str], env: dict[str, str], logs: Path) -> Process:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, popen, log)


def stop(process: Process) -> float | None:
    """SIGTERM to the process group (runs and step subprocesses included), SIGKILL if it lingers.

    Returns the CPU seconds of the service and of the processes it reaped (its runs and steps), or None
    when it had already exited and been reaped."""
    if process.popen.returncode is not None:
        return None
    os.killpg(process.popen.pid, signal.SIGTERM)
    deadline, killed = time.monotonic() + 30, False
    while True:
        pid, status, usage = os.wait4(process.popen.pid, os.WNOHANG)
        if pid:
            process.popen.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline and not killed:
            os.killpg(process.popen.pid, signal.SIGKILL)
            killed = True
        time.sleep(0.2)


def wait_for(what: str, ready: Callable[[], bool], processes: list[Process], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.popen.poll() is not None:
                pytest.fail(f"{process.name} exited with {process.popen.returncode} while waiting for {what}:\n"
                            f"{process.tail()}")  # fmt: skip
        try:
            if ready():
                return
        except (httpx.TransportError, grpc.RpcError):
            pass
        time.sleep(2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n" + "\n".join(p.tail(1500) for p in processes))


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=5).status_code == 200


def grpc_serving(port: int) -> Callable[[], bool]:
    """The compose healthcheck's question (`dagster api grpc-health-check`) asked from this process: the CLI
    spends seconds of CPU importing Dagster on every try, which a loaded machine turns into its timeout."""

    def serving() -> bool:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            request = health_pb2.HealthCheckRequest(service="DagsterApi")
            return HealthStub(channel).Check(request, timeout=10).status == health_pb2.HealthCheckResponse.SERVING

    return serving


# --- PostgreSQL as init.sh makes it ---------------------------------------------------------------------


def _dotenv(suffix: str) -> dict[str, str]:
    values = {}
    for part in ("DAGSTER", "WAREHOUSE", "MLFLOW"):
        name = f"optimum_topo_{suffix}_{part.lower()}"
        values |= {f"{part}_PG_USER": name, f"{part}_PG_DB": name, f"{part}_PG_PASSWORD": secrets.token_hex(12)}
    return values | {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "unused"}


@pytest.fixture(scope="module")
def databases(postgres_admin) -> Iterator[dict[str, str]]:
    """Roles and databases created by infra/postgres/init.sh on the local server, dropped afterwards."""
    dotenv = _dotenv(uuid.uuid4().hex[:8])
    admin = ADMIN_DSN.split("://", 1)[1]
    host_port = admin.split("@", 1)[1].split("/", 1)[0]
    env = os.environ | dotenv | {"PGHOST": host_port.split(":")[0], "PGPORT": host_port.split(":")[1]}
    subprocess.run(["bash", str(REPO / "infra" / "postgres" / "init.sh")], env=env, check=True, timeout=60)
    yield dotenv
    con = _admin_connection()
    with con.cursor() as cur:
        for part in ("DAGSTER", "WAREHOUSE", "MLFLOW"):
            cur.execute(f'DROP DATABASE IF EXISTS "{dotenv[f"{part}_PG_DB"]}" WITH (FORCE)')
            cur.execute(f'DROP ROLE IF EXISTS "{dotenv[f"{part}_PG_USER"]}"')
    con.close()


# --- the topology ---------------------------------------------------------------------------------------


def graphql(url: str, query: str, **variables) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


LAUNCH = """
mutation($job: String!, $location: String!, $repo: String!) {
  launchRun(executionParams: {selector: {repositoryLocationName: $location, repositoryName: $repo, jobName: $job},
                              runConfigData: "{}"}) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
SCHEDULE = """
query($location: String!, $repo: String!, $name: String!) {
  scheduleOrError(scheduleSelector: {repositoryLocationName: $location, repositoryName: $repo, scheduleName: $name}) {
    ... on Schedule { scheduleState { id status ticks(limit: 5) { status runIds } } }
  }
}"""
INSTIGATORS = """
query($location: String!, $repo: String!) {
  repositoryOrError(repositorySelector: {repositoryLocationName: $location, repositoryName: $repo}) {
    __typename
    ... on Repository { sensors { name sensorState { id status } } schedules { name scheduleState { id status } } }
  }
}"""
STOP_SENSOR = """
mutation($id: String!) { stopSensor(id: $id) { __typename ... on PythonError { message } } }"""
STOP_SCHEDULE = """
mutation($id: String!) { stopRunningSchedule(id: $id) { __typename ... on PythonError { message } } }"""
START_SCHEDULE = """
mutation($location: String!, $repo: String!, $name: String!) {
  startSchedule(scheduleSelector: {repositoryLocationName: $location, repositoryName: $repo, scheduleName: $name}) {
    __typename ... on PythonError { message }
  }
}"""


def wait_for_run(url: str, run_id: str, processes: list[Process], timeout: float) -> str:
    status = {}

    def finished() -> bool:
        status["now"] = graphql(url, RUN_STATUS, id=run_id)["runOrError"]["status"]
        return status["now"] in ("SUCCESS", "FAILURE", "CANCELED")

    wait_for(f"run {run_id}", finished, processes, timeout)
    return status["now"]


# Sensors that would start runs of their own from what the landing folder already holds (the ingest, the
# eager warehouse and monitoring assets after it, a retrain): paused so that the daemon runs the one run
# launched here. The run-failure alert sensor starts no runs and stays on.
RUN_STARTING_SENSORS = {"landing_sensor", "declarative_automation", "retrain_on_evidence"}


def test_production_topology_runs_end_to_end(tmp_path, small_demo, databases):
    ports = {name: free_port() for name in ("user_code", "dagster_webserver", "mlflow", "bentoml")}
    postgres_port = int(ADMIN_DSN.rsplit(":", 1)[1].split("/")[0])
    local = Local(tmp_path, ports | {"postgres": postgres_port}, databases, small_demo.out_dir / "landing")
    logs = tmp_path / "logs"
    for folder in ("logs", "dagster_home", "state", "backups", "mlartifacts"):
        (tmp_path / folder).mkdir()
    # What infra/Dockerfile bakes into the image: the instance config and the workspace.
    instance = yaml.safe_load((REPO / "infra" / "dagster.yaml").read_text())
    instance["compute_logs"]["config"]["base_dir"] = local.text(instance["compute_logs"]["config"]["base_dir"])
    (tmp_path / "dagster_home" / "dagster.yaml").write_text(yaml.safe_dump(instance))
    workspace = yaml.safe_load((REPO / "infra" / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"] |= {"host": "127.0.0.1", "port": ports["user_code"]}
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))

    env = local.env
    small = {
        "OPTIMUM_FORECAST_HORIZON": "4",
        "OPTIMUM_FORECAST_PROPHET_TOP_N": "2",
        "OPTIMUM_RECS_TOP_N": "5",
        "OPTIMUM_BACKUP_CRON": "* * * * *",  # a tick every minute instead of 03:00
    }
    started = time.monotonic()
    phases: dict[str, float] = {}  # phase -> seconds since the start, printed with the CPU use at the end
    processes: list[Process] = []
    try:
        mlflow = start("mlflow", local.command("mlflow"), env("mlflow"), logs)
        code = start("user_code", local.command("user_code"), env("user_code", **small), logs)
        processes += [mlflow, code]
        wait_for("the code server", grpc_serving(ports["user_code"]), processes, 300)
        phases["code server serving"] = time.monotonic() - started
        webserver = start("dagster_webserver", local.command("dagster_webserver"), env("dagster_webserver"), logs)
        processes.append(webserver)
        dagster_url = f"http://127.0.0.1:{ports['dagster_webserver']}"
        repository: dict = {}

        def loaded() -> bool:
            repository.update(graphql(dagster_url, INSTIGATORS, **_vars(LOCATION))["repositoryOrError"])
            return repository["__typename"] == "Repository"

        wait_for("the webserver with the code location", loaded, processes, 180)
        sensors = {sensor["name"]: sensor["sensorState"] for sensor in repository["sensors"]}
        schedules = {schedule["name"]: schedule["scheduleState"] for schedule in repository["schedules"]}
        assert {name: sensors[name]["status"] for name in RUN_STARTING_SENSORS} == dict.fromkeys(
            RUN_STARTING_SENSORS, "RUNNING"
        ), "the sensors run without anyone turning them on"
        assert schedules["nightly_backup"]["status"] == "RUNNING", "so does the backup schedule"
        # Paused before the daemon starts, so none of them ticks first; the backup schedule is held until
        # the refresh is done, as an operator would.
        for name in RUN_STARTING_SENSORS:
            assert graphql(dagster_url, STOP_SENSOR, id=sensors[name]["id"])["stopSensor"]["__typename"] == (
                "StopSensorMutationResult"
            )
        graphql(dagster_url, STOP_SCHEDULE, id=schedules["nightly_backup"]["id"])
        daemon = start("dagster_daemon", local.command("dagster_daemon"), env("dagster_daemon"), logs)
        processes.append(daemon)

        launched = graphql(dagster_url, LAUNCH, job="refresh_everything", **_vars(LOCATION))["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        assert launched["run"]["status"] == "QUEUED", "the queued run coordinator leaves runs to the daemon"
        mlflow_url = f"http://127.0.0.1:{ports['mlflow']}"
        wait_for("the MLflow server", http_ok(f"{mlflow_url}/health"), processes, 300)
        phases["MLflow serving"] = time.monotonic() - started
        status = wait_for_run(dagster_url, launched["run"]["runId"], processes, 900)
        phases["refresh_everything done"] = time.monotonic() - started
        assert status == "SUCCESS", code.tail(6000)

        warehouse = psycopg2.connect(local.text(env_of("user_code")["OPTIMUM_PG_DSN"]))
        with warehouse.cursor() as cur:
            for mart in ("fct_sales_daily", "user_item_scores", "recommendations", "demand_forecast"):
                cur.execute(f"SELECT count(*) FROM marts.{mart}")
                assert cur.fetchone()[0] > 0, mart
        warehouse.close()

        registry = MlflowClient(mlflow_url, registry_uri=mlflow_url)
        champions = {
            name: registry.get_model_version_by_alias(name, "champion").version
            for name in (RECOMMENDER_MODEL_NAME, FORECASTER_MODEL_NAME)
        }

        bento = start("bentoml", local.command("bentoml"), env("bentoml"), logs)
        processes.append(bento)
        bento_url = f"http://127.0.0.1:{ports['bentoml']}"

        schedule_args = LOCATION | {"name": "nightly_backup"}
        graphql(dagster_url, START_SCHEDULE, **_vars(schedule_args))
        ticks: list = []

        def ticked() -> bool:
            state = graphql(dagster_url, SCHEDULE, **_vars(schedule_args))["scheduleOrError"]["scheduleState"]
            ticks[:] = [t for t in state["ticks"] if t["status"] == "SUCCESS"]
            return bool(ticks and ticks[0]["runIds"])

        wait_for("a tick of nightly_backup", ticked, processes, 180)
        graphql(dagster_url, STOP_SCHEDULE, id=schedules["nightly_backup"]["id"])
        assert wait_for_run(dagster_url, ticks[0]["runIds"][0], processes, 300) == "SUCCESS", code.tail(6000)
        phases["backup run done"] = time.monotonic() - started
        (backup,) = sorted((tmp_path / "backups").glob("optimum-backup-*.tar.gz"))[:1]
        from orchestration.backup import read_verified

        manifest = read_verified(backup, tmp_path / "unpacked")
        assert set(manifest["databases"]) == {"warehouse", "dagster", "mlflow"}
        assert any(m.startswith("files/mlflow_artifacts/") for m in manifest["members"])

        # Production requires tokens: one made by the operator's command, with the service's settings (its
        # hash lands in the production database).
        created = subprocess.run(
            [str(Path(sys.executable).parent / "optimum"), "token", "create", "shop-frontend", "--scope", "predict"],
            env=env("bentoml"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip()
        wait_for("the BentoML service", http_ok(f"{bento_url}/readyz"), processes, 240)
        body = {"user_id": "u-never-seen", "count": 3}
        refused = httpx.post(f"{bento_url}/recommend", json=body, timeout=30)
        assert refused.status_code == 401, refused.text
        answer = httpx.post(
            f"{bento_url}/recommend", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        phases["served answer"] = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == champions[RECOMMENDER_MODEL_NAME]
        assert len(answer.json()["items"]) == 3
    finally:
        cpu = {process.name: stop(process) for process in reversed(processes)}
        print("topology phases (s since start):", {name: round(at) for name, at in phases.items()})
        print("topology CPU seconds per service:", {name: None if s is None else round(s) for name, s in cpu.items()})


def _vars(selector: dict) -> dict:
    return {"location": selector["repositoryLocationName"], "repo": selector["repositoryName"]} | {
        key: value for key, value in selector.items() if key == "name"
    }
