"""gt_labeling: raw dataset -> ground-truth advantage labels (Stage 0).

Statistics only (the seed's ``--dry-run``, writes no dataset)::

    kedro run --pipelines gt_labeling --to-outputs gt_label_stats
"""

from kedro.pipeline import Pipeline

from adv_pipeline.pipelines.advantage_labels import labeling_pipeline


def create_pipeline(source: str = "raw_dataset", **kwargs) -> Pipeline:
    """Stage 0 on the catalog dataset ``source`` (the ``metaworld`` chain: the annotation
    pipeline's ``annotated_dataset``)."""
    return labeling_pipeline(
        namespace="gt_labeling",
        source=source,
        output="gt_labeled_dataset",
        stats="gt_label_stats",
        metrics="gt_label_metrics",
        histogram="gt_label_histogram",
    )
