"""Versions a killed training left without alias and reason: the rule (pure), then on a real SQLite registry."""

from __future__ import annotations

from ml.registry import (
    ABANDONED,
    CHALLENGER,
    DAGSTER_RUN_TAG,
    Evaluation,
    ModelRegistry,
    VersionState,
    abandoned_versions,
)


def _state(version="1", alias=False, decided=False, status="KILLED", dagster_ended=None) -> VersionState:
    return VersionState(version, alias, decided, status, dagster_ended)


def test_only_undecided_versions_without_alias_whose_run_cannot_be_alive_are_abandoned():
    states = [
        _state("1", status=None),  # the run was deleted
        _state("2", status="FAILED"),
        _state("3", status="KILLED"),
        _state("4", status="RUNNING", dagster_ended=True),  # its Dagster run is over: nobody will decide it
        _state("5", status="RUNNING", dagster_ended=None),  # may still be publishing: left alone
        _state("6", status="RUNNING", dagster_ended=False),
        _state("7", alias=True),  # the challenger of a killed run is decided by the next publish instead
        _state("8", decided=True),  # history: kept, promoted and replaced
        _state("9", status="FINISHED"),  # not written by publish (a finished publish always decides)
    ]
    found = abandoned_versions(states)
    assert sorted(found) == ["1", "2", "3", "4"]
    assert "KILLED" in found["3"] and "no longer exists" in found["1"] and "Dagster" in found["4"]


def test_nothing_to_clean_in_a_healthy_registry():
    assert abandoned_versions([_state("1", alias=True), _state("2", decided=True, status="FINISHED")]) == {}


def test_mark_abandoned_tags_them_on_a_real_registry(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = ModelRegistry(uri)
    client = registry.client
    experiment = client.create_experiment("cleanup", artifact_location=(tmp_path / "artifacts").as_uri())
    client.create_registered_model("model")

    def version(status: str, dagster_run: str) -> str:
        run = client.create_run(experiment, tags={DAGSTER_RUN_TAG: dagster_run})
        if status != "RUNNING":
            client.set_terminated(run.info.run_id, status=status)
        source = f"{run.info.artifact_uri}/model"
        return str(client.create_model_version("model", source=source, run_id=run.info.run_id).version)

    killed = version("KILLED", "d1")
    alive = version("RUNNING", "d-alive")
    left_running = version("RUNNING", "d-over")
    challenger = version("KILLED", "d2")
    client.set_registered_model_alias("model", CHALLENGER, challenger)
    ended = {"d-alive": False, "d-over": True}

    marked = registry.mark_abandoned("model", lambda run_id: ended.get(run_id, True))
    assert sorted(marked) == sorted([killed, left_running])
    tags = client.get_model_version("model", killed).tags
    assert tags["promotion.decision"] == ABANDONED and "KILLED" in tags["promotion.reason"]
    assert "promotion.decision" not in client.get_model_version("model", alive).tags
    assert registry.mark_abandoned("model", lambda run_id: ended.get(run_id, True)) == {}, "marked once"
    assert ModelRegistry(f"sqlite:///{tmp_path / 'none.db'}").mark_abandoned("model") == {}
    assert not (tmp_path / "none.db").exists(), "looking does not create a registry"


def test_an_undecided_challenger_is_decided_by_the_next_publish(tmp_path):
    """A run killed between registering and promoting leaves the challenger undecided; publishing the same
    training again decides it instead of reporting "unchanged" forever."""
    from ml.registry import TRAINING_KEY_TAG
    from ml.training import TrainingJob, publish

    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = registry.client
    experiment = client.create_experiment("cleanup", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment)
    client.set_terminated(run.info.run_id, status="KILLED")
    evaluation = Evaluation("mase", 0.8, False, "data", "{}", "naive", 1.0)
    client.create_registered_model("model")
    tags = evaluation.as_tags() | {TRAINING_KEY_TAG: "key"}
    source = f"{run.info.artifact_uri}/m"
    version = client.create_model_version("model", source=source, run_id=run.info.run_id, tags=tags)
    client.set_registered_model_alias("model", CHALLENGER, str(version.version))

    def never_train():
        raise AssertionError("the same training key must not train again")

    job = TrainingJob(name="model", run_name="r", key="key", train=never_train)
    published = publish(job, registry, experiment)
    assert published.decision.outcome == "promoted" and published.version == str(version.version)
    assert registry.champion("model").version == str(version.version)
    reason = client.get_model_version("model", published.version).tags["promotion.reason"]
    assert reason == "first model: nothing to beat"
