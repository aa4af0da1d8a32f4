"""The project's resolved parameters (conf/base, globals and resolvers applied), for the
benchmark scripts: run them from the repository root."""

from __future__ import annotations

from kedro.config import OmegaConfigLoader

from adv_pipeline.settings import CONFIG_LOADER_ARGS


def project_params() -> dict:
    loader = OmegaConfigLoader(
        "conf",
        base_env="base",
        default_run_env="base",
        custom_resolvers=CONFIG_LOADER_ARGS["custom_resolvers"],
    )
    return loader["parameters"]
