"""infra/k8s/ checked without a cluster: manifests against the Kubernetes API schema (kubernetes-validate,
offline), the Dagster parts against the config schemas shipped in dagster-k8s, and all of it against the
compose services and the code it deploys.
"""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dagster._config import process_config
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_k8s.job import USER_DEFINED_K8S_JOB_CONFIG_SCHEMA

from optimum.settings import Settings
from orchestration.definitions import build_definitions
from tests.unit.test_deployment_files import PYPROJECT, SERVICES

K8S = Path(__file__).resolve().parents[2] / "infra" / "k8s"
KUBERNETES_VERSION = "1.37.0"
MANIFESTS = {
    path.name: list(yaml.safe_load_all(path.read_text())) for path in (K8S / "bentoml.yaml", K8S / "mlflow.yaml")
}
VALUES = yaml.safe_load((K8S / "dagster-values.yaml").read_text())
EXECUTOR = yaml.safe_load((K8S / "executor.yaml").read_text())
TRAINING_STEPS = {"recommender", "demand_forecaster"}


def _kind(file: str, kind: str) -> dict:
    (document,) = [d for d in MANIFESTS[file] if d["kind"] == kind]
    return document


def _container(file: str) -> dict:
    (container,) = _kind(file, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def _valid(document: dict) -> None:
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{document['kind']} {document.get('metadata', {}).get('name')}: {error.message} at {error.path}")


@pytest.mark.parametrize("file", sorted(MANIFESTS))
def test_manifests_follow_the_kubernetes_api_schema(file):
    for document in MANIFESTS[file]:
        _valid(document)


def test_a_typo_in_a_manifest_is_caught():
    broken = yaml.safe_load(yaml.safe_dump(_kind("bentoml.yaml", "Deployment")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_bentoml_runs_replicas_with_probes_and_an_autoscaler():
    deployment = _kind("bentoml.yaml", "Deployment")
    container = _container("bentoml.yaml")
    assert container["command"] == SERVICES["bentoml"]["command"], "the same process as in docker-compose.yml"
    assert deployment["spec"]["replicas"] >= 2
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]["cpu"], "the autoscaler needs a CPU request to compute utilization"
    hpa = _kind("bentoml.yaml", "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] == deployment["spec"]["replicas"] < hpa["spec"]["maxReplicas"]
    tracking = {e["name"]: e.get("value") for e in container["env"]}["OPTIMUM_MLFLOW_TRACKING_URI"]
    service = _kind("mlflow.yaml", "Service")
    assert tracking == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"


def test_mlflow_server_is_the_compose_command_on_postgres_and_a_volume():
    container = _container("mlflow.yaml")
    assert container["command"] == SERVICES["mlflow"]["command"]
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"], "the DSN carries a password"
    artifacts = container["command"][container["command"].index("--artifacts-destination") + 1]
    assert [m["mountPath"] for m in container["volumeMounts"]] == [artifacts]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def run_launcher_config(values: dict, release: str = "dagster") -> dict:
    """The K8sRunLauncher section the chart renders into the instance's dagster.yaml from these values."""
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = {_snake(key): value for key, value in launcher.items() if key != "runK8sConfig"}
    config["env_secrets"] = [secret["name"] for secret in launcher.get("envSecrets", [])]
    config["run_k8s_config"] = {_snake(key): value for key, value in launcher.get("runK8sConfig", {}).items()}
    return config | {
        "instance_config_map": f"{release}-instance",
        "dagster_home": "/opt/dagster/dagster_home",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }


def _schema_errors(config_type, config: dict) -> list[str]:
    result = process_config(config_type, config)
    return [] if result.success else [error.message for error in result.errors]


def test_helm_run_launcher_matches_the_k8s_run_launcher_schema():
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    assert _schema_errors(K8sRunLauncher.config_type(), run_launcher_config(VALUES)) == []
    wrong = run_launcher_config(VALUES) | {"image_pull_polcy": "Always"}
    assert _schema_errors(K8sRunLauncher.config_type(), wrong), "the schema check must catch a misspelt field"


def test_helm_values_deploy_our_code_on_external_postgres():
    assert VALUES["postgresql"]["enabled"] is False and VALUES["postgresql"]["postgresqlHost"]
    assert VALUES["postgresql"]["postgresqlDatabase"] == "dagster"
    coordinator = VALUES["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", PYPROJECT["tool"]["dagster"]["module_name"]]
    assert deployment["name"] == PYPROJECT["tool"]["dagster"]["code_location_name"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    fields = {f"OPTIMUM_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields
    assert env["OPTIMUM_EXECUTOR"] == "k8s" and env["OPTIMUM_TARGET"] == "postgres"
    images = {f"{deployment['image']['repository']}:{deployment['image']['tag']}"}
    images |= {_container(file)["image"] for file in MANIFESTS}
    assert len(images) == 1, f"one image everywhere, as in docker-compose.yml: {images}"


def test_k8s_executor_config_matches_the_schema_and_names_real_training_steps(tmp_path):
    assert _schema_errors(k8s_job_executor.config_schema.config_type, EXECUTOR) == []
    per_step = EXECUTOR["per_step_k8s_config"]
    assert set(per_step) == TRAINING_STEPS
    for step, config in [("default", EXECUTOR["step_k8s_config"]), *per_step.items()]:
        assert _schema_errors(USER_DEFINED_K8S_JOB_CONFIG_SCHEMA, config) == [], step
        # The container part must also be a valid Kubernetes container (the dagster schema leaves it open).
        container = {"name": "step", "image": "optimum", **config["container_config"]}
        _valid({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": step}, "spec": {"containers": [container]}})
        assert container["resources"]["requests"]["memory"], step

    definitions = build_definitions(Settings(home=tmp_path / "state", executor="k8s"))
    job = definitions.resolve_job_def("refresh_everything")
    assert job.executor_def.name == "k8s"
    assert {node.name for node in job.graph.nodes} >= TRAINING_STEPS, "per-step keys must be step names"
