"""metaworld: the whole chain as a user's recording goes through it, in one command::

    kedro run --env metaworld --pipelines metaworld

the recording (``demo`` pipeline, ``world: metaworld``) and its boundary file -> the
``annotation`` pipeline -> Stage 0 on the annotated dataset -> the estimator (Stage 1) ->
estimation (Stage 2) -> AWBC, BC and curated BC, rolled out in Meta-World (Stage 3). The
same pipelines as the demo's; only Stage 0 reads the annotation's output instead of the
recording (which has no progress columns).
"""

from kedro.pipeline import Pipeline

from adv_pipeline.pipelines import annotation, awbc, demo, estimation, estimator, gt_labeling


def create_pipeline(**kwargs) -> Pipeline:
    return (
        demo.create_pipeline()
        + annotation.create_pipeline()
        + gt_labeling.create_pipeline(source="annotated_dataset")
        + estimator.create_pipeline()
        + estimation.create_pipeline()
        + awbc.create_pipeline()
    )
