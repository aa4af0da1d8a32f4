"""Project settings (Kedro defaults, plus the config resolvers and hooks the project uses)."""

from adv_pipeline.quiet import silence_third_party

silence_third_party()  # also a kedro.init entry point, for what loads before the settings

from adv_pipeline.hooks import SafetyHooks, TrackingHooks  # noqa: E402

# parameters, output paths and input checked (and outputs locked) before any work; the
# MLflow run named after what ran, with its inputs (see hooks.py)
HOOKS = (SafetyHooks(), TrackingHooks())


def _stage_nums_for(variant: str) -> int:
    """Stages for stage-aware AWBC labels, as the seed's batch script: 2 for KAI0, 1 for PI06."""
    return 2 if str(variant).upper() == "KAI0" else 1


CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"stage_nums_for": _stage_nums_for},
    # an environment's parameters (conf/local, conf/privileged) override single nested keys
    "merge_strategy": {"parameters": "soft"},
}
