"""Every parameters file goes through one config path: a typo'd key in any namespace, or
a misspelt runtime parameter, is refused before any work, naming the closest key."""

from __future__ import annotations

import pytest

from adv_pipeline.configs import ConfigError, from_params
from adv_pipeline.pipelines.params import NAMESPACES, check_parameters, parse

from ..conftest import mlflow_runs

# one typo per stage: (pipeline, runtime parameters, the key named, the closest key)
TYPOS = {
    "demo": ("demo", {"demo": {"n_episode": 2}}, "demo.n_episode", "n_episodes"),
    "gt_labeling": (
        "gt_labeling",
        {"gt_labeling": {"thresold": 30}},
        "gt_labeling.thresold",
        "threshold",
    ),
    "estimator": (
        "estimator",
        {"estimator": {"train": {"stepz": 3}}},
        "estimator.train.stepz",
        "steps",
    ),
    "estimation": (
        "estimation",
        {"estimation": {"intervall": 10}},
        "estimation.intervall",
        "interval",
    ),
    "awbc_labeling": (
        "estimation",
        {"awbc_labeling": {"stage_num": 2}},
        "awbc_labeling.stage_num",
        "stage_nums",
    ),
    "awbc": ("awbc", {"awbc": {"eval": {"guidance": 3.0}}}, "awbc.eval.guidance", "guidance_scale"),
    "a namespace": (
        "gt_labeling",
        {"gt_labelling": {"threshold": 30}},
        "gt_labelling",
        "gt_labeling",
    ),
    "a runtime parameter": (
        "gt_labeling",
        {"raw_datset_path": "/data/x"},
        "raw_datset_path",
        "raw_dataset_path",
    ),
}


@pytest.mark.parametrize("stage", list(TYPOS))
def test_a_typo_is_refused_naming_the_closest_key(stage, session_run, kedro_project):
    pipeline, params, key, closest = TYPOS[stage]
    with pytest.raises(ConfigError, match=rf"unknown key {key}; did you mean '{closest}'\?"):
        session_run(pipeline, **params)
    assert mlflow_runs(kedro_project) == [] and not (kedro_project / "data").exists()


# fields whose conf/base value differs from the code's default on purpose
OWN_VALUES = {
    "gt_labeling": {"task_text"},  # the demo's task; the code keeps the seed's default
    "awbc_labeling": {
        "threshold",
        "stage_nums",
        "advantage_source",
        "task_text",
    },  # Stage 0's options on Stage 2's output
    "metaworld": {"task_texts"},  # task texts live in conf only (the code derives them)
}


def test_every_parameters_file_parses_with_the_one_config_path(session_run, kedro_project):
    """conf/base's namespaces (resolved by Kedro) build their configs through the one
    path, and the code's defaults are conf/base's values."""
    import dataclasses

    from kedro.framework.session import KedroSession

    session_run  # noqa: B018 (the fixture enters the project copy)
    with KedroSession.create(project_path=kedro_project) as session:
        params = session.load_context().params
    assert set(NAMESPACES) <= set(params)
    check_parameters(params, set())
    for namespace, cls in NAMESPACES.items():
        config, default = parse(namespace, params[namespace]), cls()
        differ = {
            f.name
            for f in dataclasses.fields(cls)
            if getattr(config, f.name) != getattr(default, f.name)
        }
        assert differ <= OWN_VALUES.get(namespace, set()), (
            f"{namespace}: conf/base and the code's defaults differ in {differ}"
        )
    assert (
        from_params(NAMESPACES["estimator"], params["estimator"], "estimator").launch.nproc_per_node
        == 1
    )


def test_advantage_target_sets_the_kind_of_stage_1_and_stage_2(session_run, kedro_project):
    """One runtime parameter (globals.yml's advantage_target) moves the estimator's target
    and Stage 2's expected kind together; C_fail has one home for Stage 0 and Stage 1."""
    from kedro.framework.session import KedroSession

    session_run  # noqa: B018 (the fixture enters the project copy)
    for given, kind in (({}, "progress"), ({"advantage_target": "returns"}, "returns")):
        runtime = {**given, "estimator_variant": "PI06"}
        with KedroSession.create(project_path=kedro_project, runtime_params=runtime) as session:
            params = session.load_context().params
        estimator, estimation = (
            parse("estimator", params["estimator"]),
            parse("estimation", params["estimation"]),
        )
        assert estimator.model.target == estimation.target == kind
        labeling = parse("gt_labeling", params["gt_labeling"])
        assert labeling.failure_penalty == estimator.model.failure_penalty == 50.0


@pytest.mark.parametrize("env", ["privileged", "pi05"])
def test_every_conf_environment_parses_with_the_one_config_path(env, session_run, kedro_project):
    """The documented environments (``kedro run --env privileged | pi05``) hold only known
    keys, and their options fit together: the estimator's config checks pass, and the
    policy reads only columns Stage 2 writes."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    session_run  # noqa: B018 (the fixture enters the project copy)
    bootstrap_project(kedro_project)
    with KedroSession.create(project_path=kedro_project, env=env) as session:
        params = session.load_context().params
    check_parameters(params, set())
    configs = {namespace: parse(namespace, params[namespace]) for namespace in NAMESPACES}
    assert configs["estimator"].data != NAMESPACES["estimator"]().data  # the env applies
    state_key = configs["awbc"].data.state_key
    features = configs["estimation"].image_features
    reads = {state_key} if isinstance(state_key, str) else set(state_key)
    assert features in reads or "observation.image_features" not in reads


@pytest.mark.parametrize(
    "namespace, values, message",
    [
        ("awbc", {"model": {"head": "diffusion"}}, "awbc.model.head must be one of flow, mse"),
        (
            "awbc",
            {"data": {"normalization": "minmax"}},
            "awbc.data.normalization must be one of quantile, mean_std, got 'minmax'",
        ),
        (
            "awbc",
            {"eval": {"guidance_reference": "worst"}},
            "awbc.eval.guidance_reference must be one of negative, unconditional",
        ),
        ("awbc", {"eval": {"closed_loop": 1}}, "closed_loop must be one of true, false, auto"),
        ("estimator", {"train": {"resume": "yes"}}, "estimator.train.resume must be one of"),
        ("estimator", {"model": {"variant": "kai0"}}, "variant must be one of KAI0, PI06"),
        ("gt_labeling", {"threshold_scope": "task"}, "threshold_scope must be one of stage,"),
    ],
)
def test_a_value_outside_its_choices_is_refused_naming_them(namespace, values, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse(namespace, values)
    assert f"Fix: change it in --params or conf/base/parameters_{namespace}.yml" in str(err.value)
    # the same field accepts each of its choices
    assert parse("awbc", {"eval": {"closed_loop": "auto", "guidance_reference": "unconditional"}})
