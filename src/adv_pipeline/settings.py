"""Project settings (Kedro defaults, plus the config resolvers the project uses)."""


def _stage_nums_for(variant: str) -> int:
    """Stages for stage-aware AWBC labels, as the seed's batch script: 2 for KAI0, 1 for PI06."""
    return 2 if str(variant).upper() == "KAI0" else 1


CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"stage_nums_for": _stage_nums_for},
}
