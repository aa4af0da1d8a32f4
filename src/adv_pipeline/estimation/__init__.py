"""Stage 2: label a dataset with a trained estimator (streaming, resumable, torchrun),
and score the labels against ground truth when the data has it. Its names load torch
only when first used (see :mod:`adv_pipeline.lazy`)."""

from adv_pipeline.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "EpisodeValues": ".columns",
        "EstimationConfig": ".config",
        "advantage_columns": ".columns",
        "check_estimation_inputs": ".checks",
        "estimate": ".estimate",
        "estimation_report": ".agreement",
        "predict_episode": ".inference",
        "roc_auc": ".agreement",
    },
)
