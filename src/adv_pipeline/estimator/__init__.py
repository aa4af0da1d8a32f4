"""Stage 1: the advantage estimator (torch): model, backbones, data loading, training.
Its names load torch only when first used (see :mod:`adv_pipeline.lazy`)."""

from adv_pipeline.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "AdvantageEstimator": ".model",
        "DataConfig": ".config",
        "EstimatorConfig": ".config",
        "ModelConfig": ".config",
        "TrainConfig": ".config",
        "available_backbones": ".backbones",
        "build_backbone": ".backbones",
        "register_backbone": ".backbones",
        "run_training": ".launch",
    },
)
