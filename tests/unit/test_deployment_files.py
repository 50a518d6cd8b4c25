"""The production description (docker-compose.yml and infra/) checked without a Docker engine.

The files are parsed and held against each other, against the repository (modules, COPY sources, dbt
profile) and against Dagster's own config schema, so that a typo fails here instead of on a server.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import stat
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
INSTANCE_YAML = REPO / "infra" / "dagster.yaml"
INIT_SCRIPT = REPO / "infra" / "postgres" / "init.sh"

APP_IMAGE = "optimum:latest"
DAGSTER_SERVICES = ("user_code", "dagster_webserver", "dagster_daemon")
# service -> (host port, container port) of every published port; services not listed publish none.
PUBLISHED = {"dagster_webserver": [(3000, 3000)], "mlflow": [(5000, 5000)], "bentoml": [(3001, 3000)]}

# ${NAME}, ${NAME:-default}, ${NAME:?error}, ... as compose interpolates them.
REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
REQUIRED_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}")
# postgresql[+driver]://user:password@host:port/db, where user and password may be ${...} references.
PG_URL = re.compile(
    r"postgresql(?:\+(?P<driver>\w+))?://(?P<user>\$\{[^}]+\}|[^:@/]+):(?P<password>\$\{[^}]+\}|[^@]+)"
    r"@(?P<host>[^:/]+):(?P<port>\d+)/(?P<db>\w+)"
)


def strings(node) -> Iterator[str]:
    """Every string of a parsed YAML document, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def compose_refs() -> dict[str, set[str]]:
    """Variable name -> the `${...}` expressions that use it ($$ is compose's escape, not a reference)."""
    refs: dict[str, set[str]] = {}
    for text in strings(COMPOSE):
        for match in REF.finditer(text.replace("$$", "")):
            refs.setdefault(match["name"], set()).add(match[0])
    return refs


def env_of(service: str) -> dict[str, str]:
    environment = SERVICES[service].get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose interpolation with `values` as the .env file (a required variable must be there)."""

    def sub(match: re.Match) -> str:
        value = values.get(match["name"], "")
        if match["op"] in (":-", "-") and not value:
            return match["arg"]
        assert value or match["op"] not in (":?", "?"), f"{match['name']} is required"
        return value

    return REF.sub(sub, text)


def option(command: list[str], *flags: str) -> str:
    """The value following the first of `flags` in an argv list."""
    for index, word in enumerate(command[:-1]):
        if word in flags:
            return command[index + 1]
    raise AssertionError(f"{flags} not in {command}")


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (REPO / "infra" / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"not NAME=value: {line!r}"
            pairs[name.strip()] = value.strip()
    return pairs


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in (REPO / "infra" / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, args = pending.strip().partition(" ")
        instructions.append((word.upper(), args.strip()))
        pending = ""
    return instructions


def dockerfile_env() -> dict[str, str]:
    return {
        key: value
        for word, args in dockerfile()
        if word == "ENV"
        for key, _, value in (pair.partition("=") for pair in shlex.split(args))
    }


def dockerfile_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not `--from=` another image)."""
    copies = []
    for word, args in dockerfile():
        words = shlex.split(args)
        if word == "COPY" and not any(w.startswith("--from") for w in words):
            paths = [w for w in words if not w.startswith("--")]
            copies.append((paths[:-1], paths[-1]))
    return copies


def assert_driver_installed(url: str) -> None:
    """SQLAlchemy imports the URL's DB driver when it builds an engine, before any connection.

    SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which the lock does not install, so a URL that
    Dagster or MLflow hands to SQLAlchemy must name psycopg2.
    """
    import sqlalchemy

    sqlalchemy.create_engine(url).dispose()


def instance_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name in instance_env_vars():
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def instance_env_vars() -> set[str]:
    """Environment variables infra/dagster.yaml reads (`env:` sources)."""
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if set(node) == {"env"}:
                found.add(node["env"])
            for value in node.values():
                walk(value)

    walk(yaml.safe_load(INSTANCE_YAML.read_text()))
    return found


# --- docker-compose.yml -------------------------------------------------------------------------------


def test_services_have_images_and_one_build():
    assert set(SERVICES) == {"postgres", "user_code", "dagster_webserver", "dagster_daemon", "mlflow", "bentoml"}
    assert SERVICES["postgres"]["image"] == "postgres:16"
    builders = [name for name, service in SERVICES.items() if "build" in service]
    assert builders == ["user_code"], "one service builds the image the others reuse"
    build = SERVICES["user_code"]["build"]
    assert build["context"] == "." and (REPO / build["dockerfile"]).is_file()
    for name in SERVICES.keys() - {"postgres"}:
        assert SERVICES[name]["image"] == APP_IMAGE, name
        assert isinstance(SERVICES[name]["command"], list) and SERVICES[name]["command"], name


def test_commands_serve_on_the_declared_ports():
    code = SERVICES["user_code"]["command"]
    assert code[:3] == ["dagster", "code-server", "start"]
    assert option(code, "-h", "--host") == "0.0.0.0" and option(code, "-p", "--port") == "4000"

    workspace = next(dest for sources, dest in dockerfile_copies() if sources == ["infra/workspace.yaml"])
    webserver = SERVICES["dagster_webserver"]["command"]
    assert webserver[0] == "dagster-webserver" and option(webserver, "-h", "--host") == "0.0.0.0"
    assert option(webserver, "-p", "--port") == "3000"
    assert option(webserver, "-w", "--workspace") == workspace
    daemon = SERVICES["dagster_daemon"]["command"]
    assert daemon[:2] == ["dagster-daemon", "run"]
    # Without -w the daemon would fall back to pyproject.toml and run the code in its own container.
    assert option(daemon, "-w", "--workspace") == workspace

    mlflow = SERVICES["mlflow"]["command"]
    assert mlflow[:2] == ["mlflow", "server"] and "--serve-artifacts" in mlflow
    assert option(mlflow, "--host", "-h") == "0.0.0.0" and option(mlflow, "--port", "-p") == "5000"
    artifacts = option(mlflow, "--artifacts-destination")
    assert any(volume.split(":")[1] == artifacts for volume in SERVICES["mlflow"]["volumes"])
    store = PG_URL.fullmatch(env_of("mlflow")["MLFLOW_BACKEND_STORE_URI"])
    assert store and store["host"] == "postgres" and store["db"] == "mlflow"
    assert_driver_installed(interpolate(store[0], {"MLFLOW_PG_PASSWORD": "pw"}))

    bento = SERVICES["bentoml"]["command"]
    assert bento[:3] == ["bentoml", "serve", "serving.service:RecommenderService"]
    assert option(bento, "--host") == "0.0.0.0" and option(bento, "--port", "-p") == "3000"
    assert env_of("bentoml")["OPTIMUM_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_code_server_loads_the_repositorys_definitions_module():
    module = option(SERVICES["user_code"]["command"], "-m", "--module-name")
    assert module == PYPROJECT["tool"]["dagster"]["module_name"]
    path = REPO / Path(*module.split("."))
    assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), f"{module} is not in the repo"


def test_bentoml_target_names_a_class_of_the_serving_module():
    target = SERVICES["bentoml"]["command"][2]
    module, _, name = target.partition(":")
    source = REPO / Path(*module.split(".")).with_suffix(".py")
    if not source.exists():
        pytest.skip(f"{source.relative_to(REPO)} does not exist yet (it comes with the serving work)")
    tree = ast.parse(source.read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.ClassDef)} | {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert name in defined, f"{source.relative_to(REPO)} defines no {name}"


def test_no_password_is_written_into_the_compose_file():
    checked = 0
    for name in SERVICES:
        for key, value in env_of(name).items():
            if "PASSWORD" in key:
                assert REQUIRED_REF.fullmatch(value), f"{name}.{key} must be a ${{VAR:?...}} reference"
                checked += 1
    for text in strings(COMPOSE):
        for url in PG_URL.finditer(text):
            assert REQUIRED_REF.fullmatch(url["password"]), f"literal password in {text}"
            checked += 1
    assert env_of("postgres")["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert checked >= 8


def test_every_compose_variable_is_in_env_example():
    refs, example = compose_refs(), env_example()
    assert not [t for t in strings(COMPOSE) if re.search(r"\$[A-Za-z_]", t.replace("$$", ""))], "use ${VAR}"
    assert refs.keys() == example.keys(), "docker-compose.yml and infra/.env.example list the same variables"
    for name, value in example.items():
        if "PASSWORD" in name:
            assert value == "", f"{name}: .env.example holds no password"
        defaults = {m["arg"] for e in refs[name] for m in [REF.fullmatch(e)] if m["op"] == ":-"}
        assert not value or value in defaults, f"{name}={value} contradicts the compose default {defaults}"


def test_postgres_clients_wait_for_a_healthy_postgres():
    clients = {
        name
        for name in SERVICES
        if name != "postgres"
        and any("PG_PASSWORD" in key or PG_URL.search(value) for key, value in env_of(name).items())
    }
    assert clients == {*DAGSTER_SERVICES, "mlflow", "bentoml"}  # bentoml: API tokens in the warehouse
    for name in clients:
        assert SERVICES[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
    for name, service in SERVICES.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{dependency} has no healthcheck"


def test_published_ports():
    for name, service in SERVICES.items():
        published = []
        for entry in service.get("ports", []):
            host_ip, host_port, container_port = str(entry).rsplit(":", 2)
            assert host_ip == "${OPTIMUM_BIND_ADDRESS:-127.0.0.1}", f"{name} binds to {host_ip}"
            published.append((int(host_port), int(container_port)))
        assert published == PUBLISHED.get(name, []), name


def test_volumes_and_dagster_home_agree_with_image_and_instance():
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in declared or (REPO / source).exists(), f"{name}: {source}"

    init = [v for v in SERVICES["postgres"]["volumes"] if v.startswith("./infra/postgres/")]
    assert len(init) == 1 and ":/docker-entrypoint-initdb.d/" in init[0]
    assert INIT_SCRIPT.stat().st_mode & stat.S_IXUSR, "the postgres image only executes executable .sh files"

    image_env = dockerfile_env()
    compute_logs = yaml.safe_load(INSTANCE_YAML.read_text())["compute_logs"]["config"]["base_dir"]
    for name in DAGSTER_SERVICES:
        env = env_of(name)
        assert env["DAGSTER_HOME"] == image_env["DAGSTER_HOME"], name
        assert instance_env_vars() <= env.keys(), f"{name} lacks variables infra/dagster.yaml reads"
        # Runs write step logs in user_code; the webserver reads them: one volume at that path.
        assert f"dagster_storage:{compute_logs}" in SERVICES[name]["volumes"], name
    assert compute_logs.startswith(image_env["DAGSTER_HOME"] + "/")


def test_databases_and_roles_match_the_init_script():
    created = dict(re.findall(r'create_database "\$\{(\w+)_PG_DB:-(\w+)\}"', INIT_SCRIPT.read_text()))
    assert created == {"DAGSTER": "dagster", "WAREHOUSE": "warehouse", "MLFLOW": "mlflow"}
    postgres = env_of("postgres")
    dagster = env_of("user_code")
    assert dagster["DAGSTER_PG_DB"] == created["DAGSTER"] and dagster["DAGSTER_PG_HOST"] == "postgres"
    # The role init.sh creates is the role its client logs in as, defaults included.
    assert postgres["DAGSTER_PG_USER"] == dagster["DAGSTER_PG_USER"]
    assert postgres["DAGSTER_PG_PASSWORD"] == dagster["DAGSTER_PG_PASSWORD"]
    for prefix, url in (
        ("WAREHOUSE", dagster["OPTIMUM_PG_DSN"]),
        ("MLFLOW", env_of("mlflow")["MLFLOW_BACKEND_STORE_URI"]),
    ):
        parts = PG_URL.fullmatch(url)
        assert parts["db"] == created[prefix] and parts["host"] == "postgres" and parts["port"] == "5432"
        assert parts["user"] == postgres[f"{prefix}_PG_USER"] and parts["password"] == postgres[f"{prefix}_PG_PASSWORD"]


def test_settings_read_the_code_server_environment(monkeypatch):
    from optimum.settings import Settings, Target

    for name in [n for n in os.environ if n.startswith("OPTIMUM_")]:
        monkeypatch.delenv(name)
    secrets = {name: "s3cret" for name in compose_refs() if "PASSWORD" in name}
    for key, value in env_of("user_code").items():
        monkeypatch.setenv(key, interpolate(value, secrets))
    settings = Settings()
    assert settings.target is Target.POSTGRES
    assert settings.pg == {
        "host": "postgres",
        "port": "5432",
        "user": "optimum",
        "password": "s3cret",
        "dbname": "warehouse",
    }
    assert settings.landing_dir == Path("/opt/optimum/landing") and settings.home == Path("/opt/optimum/state")


# --- infra/dagster.yaml and infra/workspace.yaml ------------------------------------------------------


def test_instance_storage_is_postgres_from_environment_variables():
    postgres_db = yaml.safe_load(INSTANCE_YAML.read_text())["storage"]["postgres"]["postgres_db"]
    assert postgres_db == {
        "scheme": "postgresql+psycopg2",
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }


def test_instance_config_passes_dagsters_schema(tmp_path, monkeypatch):
    from dagster import DefaultRunLauncher, QueuedRunCoordinator
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef
    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
    from dagster_postgres import DagsterPostgresStorage
    from dagster_postgres.utils import pg_url_from_config

    shutil.copy(INSTANCE_YAML, tmp_path / "dagster.yaml")
    password = "p@ss:w/rd"
    instance_env(
        monkeypatch,
        DAGSTER_PG_HOST="db",
        DAGSTER_PG_PORT="5433",
        DAGSTER_PG_USER="dagster",
        DAGSTER_PG_PASSWORD=password,
        DAGSTER_PG_DB="dagster",
    )

    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None and config["telemetry"] == {"enabled": False}
    ref = InstanceRef.from_dir(str(tmp_path))
    assert (ref.storage_data.module_name, ref.storage_data.class_name) == ("dagster_postgres", "DagsterPostgresStorage")
    storage = process_config(DagsterPostgresStorage.config_type(), ref.storage_data.config_dict)
    assert storage.success, storage.errors
    url = pg_url_from_config(storage.value)
    assert url == f"postgresql+psycopg2://dagster:{quote(password)}@db:5433/dagster"
    assert_driver_installed(url)

    # These three build without a connection: their class paths import and their config validates.
    ref.run_coordinator_data.rehydrate(QueuedRunCoordinator)
    concurrency = ref.settings["concurrency"]  # runs at once, and one slot for the warehouse-writes pool
    assert concurrency == {"runs": {"max_concurrent_runs": 4}, "pools": {"default_limit": 1}}
    ref.run_launcher_data.rehydrate(DefaultRunLauncher)
    ref.compute_logs_data.rehydrate(LocalComputeLogManager)


def test_instance_config_needs_its_environment_variables(tmp_path, monkeypatch):
    from dagster._config import process_config
    from dagster._core.instance.ref import InstanceRef
    from dagster_postgres import DagsterPostgresStorage

    shutil.copy(INSTANCE_YAML, tmp_path / "dagster.yaml")
    instance_env(
        monkeypatch, DAGSTER_PG_HOST="db", DAGSTER_PG_PORT="5432", DAGSTER_PG_USER="dagster", DAGSTER_PG_DB="d"
    )
    storage = process_config(
        DagsterPostgresStorage.config_type(), InstanceRef.from_dir(str(tmp_path)).storage_data.config_dict
    )
    assert not storage.success and "DAGSTER_PG_PASSWORD" in str(storage.errors)


def test_workspace_points_at_the_code_server():
    from dagster._core.workspace.config_schema import ensure_workspace_config

    path = REPO / "infra" / "workspace.yaml"
    workspace = ensure_workspace_config(yaml.safe_load(path.read_text()), str(path))
    [entry] = workspace["load_from"]
    server = entry["grpc_server"]
    assert server["host"] == "user_code" and server["host"] in SERVICES
    assert str(server["port"]) == option(SERVICES["user_code"]["command"], "-p", "--port")
    assert server["location_name"] == PYPROJECT["tool"]["dagster"]["code_location_name"]


# --- infra/Dockerfile ---------------------------------------------------------------------------------


def test_dockerfile_builds_from_the_lock_and_copies_what_exists():
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert any(word == "RUN" and "uv sync --frozen --no-dev" in args for word, args in instructions)
    locked_uv = next(
        p["version"] for p in tomllib.loads((REPO / "uv.lock").read_text())["package"] if p["name"] == "uv"
    )
    assert any(word == "RUN" and f"uv=={locked_uv}" in args for word, args in instructions), "install the locked uv"
    copies = dockerfile_copies()
    copied = {source.rstrip("/") for sources, _ in copies for source in sources}
    missing = sorted(source for source in copied if not (REPO / source).exists())
    assert not missing, f"COPY sources missing from the repository: {missing}"
    code = set(PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    assert code | {"dbt_project", "expectations", "pyproject.toml", "uv.lock"} <= copied
    home = dockerfile_env()["DAGSTER_HOME"]
    assert (["infra/dagster.yaml"], "${DAGSTER_HOME}/dagster.yaml") in copies and home.startswith("/")


def test_dbt_parse_at_build_time_sets_what_the_postgres_profile_needs():
    [parse] = [args for word, args in dockerfile() if word == "RUN" and "dbt parse" in args]
    exported = dict(re.findall(r"\b([A-Z][A-Z0-9_]*)=(\S+)", parse))
    profile = next(iter(yaml.safe_load((REPO / "dbt_project" / "profiles.yml").read_text()).values()))
    assert "OPTIMUM_TARGET" in profile["target"] and exported["OPTIMUM_TARGET"] in profile["outputs"]
    output = profile["outputs"][exported["OPTIMUM_TARGET"]]
    assert output["type"] == "postgres"
    needed = {name for text in strings(output) for name in re.findall(r"env_var\(\s*'(\w+)'\s*\)", text)}
    assert needed and needed <= exported.keys(), f"dbt parse lacks {needed - exported.keys()}"


# --- against a real PostgreSQL ------------------------------------------------------------------------


@pytest.mark.postgres
def test_init_script_and_instance_on_postgres(postgres_admin, tmp_path, monkeypatch):
    """init.sh makes one private database per role, and the Dagster instance builds its schema in one."""
    import psycopg2
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from tests.conftest import ADMIN_DSN

    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    admin = urlparse(ADMIN_DSN)
    tag = f"optimum_init_{uuid.uuid4().hex[:8]}"
    names = {prefix: f"{tag}_{prefix.lower()}" for prefix in ("DAGSTER", "WAREHOUSE", "MLFLOW")}
    env = {
        **os.environ,
        "PGHOST": admin.hostname or "127.0.0.1",
        "PGPORT": str(admin.port or 5432),
        "PGPASSWORD": admin.password or "",
        "POSTGRES_USER": admin.username or "postgres",
    }
    for prefix, name in names.items():
        env |= {f"{prefix}_PG_DB": name, f"{prefix}_PG_USER": f"{name}_role", f"{prefix}_PG_PASSWORD": "pw-" + name}

    def connect(db: str, user: str, password: str):
        return psycopg2.connect(host=env["PGHOST"], port=env["PGPORT"], dbname=db, user=user, password=password)

    try:
        for _ in range(2):  # a second run changes nothing
            run = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
            if run.returncode and "permission denied to create role" in run.stderr:
                pytest.skip(f"{admin.username} may not create roles")
            assert run.returncode == 0, run.stderr

        dagster_db, warehouse_db = names["DAGSTER"], names["WAREHOUSE"]
        with connect(warehouse_db, f"{warehouse_db}_role", env["WAREHOUSE_PG_PASSWORD"]) as con, con.cursor() as cur:
            cur.execute("CREATE SCHEMA marts; CREATE TABLE marts.t (i int)")  # what dbt needs
        with pytest.raises(psycopg2.OperationalError, match="CONNECT privilege"):
            connect(warehouse_db, f"{dagster_db}_role", env["DAGSTER_PG_PASSWORD"]).close()

        shutil.copy(INSTANCE_YAML, tmp_path / "dagster.yaml")
        instance_env(
            monkeypatch,
            DAGSTER_PG_HOST=env["PGHOST"],
            DAGSTER_PG_PORT=env["PGPORT"],
            DAGSTER_PG_USER=f"{dagster_db}_role",
            DAGSTER_PG_PASSWORD=env["DAGSTER_PG_PASSWORD"],
            DAGSTER_PG_DB=dagster_db,
        )
        with DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path))) as instance:
            assert instance.get_runs_count() == 0
        with connect(dagster_db, f"{dagster_db}_role", env["DAGSTER_PG_PASSWORD"]) as con, con.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_tables WHERE tablename IN ('runs', 'event_logs', 'jobs')")
            assert cur.fetchone() == (3,)
    finally:
        con = psycopg2.connect(ADMIN_DSN)
        con.autocommit = True
        with con.cursor() as cur:
            for name in names.values():
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                cur.execute(f'DROP ROLE IF EXISTS "{name}_role"')
        con.close()
