"""`kedro run --pipelines demo` end to end: a valid LeRobot dataset that round-trips, an
MLflow run with the parameters, and `kedro viz build`."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
import yaml

from adv_pipeline.lerobot import LeRobotDatasetReader
from adv_pipeline.sim import CAMERA_KEYS, DemoTaskConfig, generate_episode, generate_mix

from ..conftest import doctor_failures, run_kedro

N_EPISODES = 5
# mean absolute error, 0..255 levels: H.264 4:2:0 chroma subsampling alone gives ~2.5 here
CODEC_TOLERANCE = 6.0


@pytest.mark.slow
def test_demo_pipeline_end_to_end(kedro_project):
    run_kedro(
        kedro_project, "run", "--pipelines", "demo", "--params", f"demo.n_episodes={N_EPISODES}"
    )
    root = kedro_project / "data/01_raw/demo"

    # a valid LeRobot v2.1 dataset
    assert doctor_failures(root) == []
    ds = LeRobotDatasetReader(root)
    assert ds.num_episodes == N_EPISODES
    assert [k.rsplit(".", 1)[-1] for k in ds.video_keys] == list(CAMERA_KEYS)

    # identical columns and frames within codec error of what the simulator rendered
    config = DemoTaskConfig(image_size=96, fps=30)
    recipes = generate_mix(config, N_EPISODES, {"expert": 0.4, "suboptimal": 0.3, "dagger": 0.3}, 0)
    for pos in (0, N_EPISODES - 1):
        seed, quality = recipes[pos]
        episode = generate_episode(config, seed, quality)
        assert ds.episodes[pos].length == episode.length
        cols = ds.read_episode(pos, list(episode.columns))
        for name, values in episode.columns.items():
            np.testing.assert_array_equal(cols[name].reshape(values.shape), values, err_msg=name)
        decoded = ds.iter_frames(pos)
        for t, (frames, truth) in enumerate(zip(decoded, episode.iter_frames())):
            if t % 25:
                continue
            for cam in CAMERA_KEYS:
                err = np.abs(frames[f"observation.images.{cam}"].astype(float) - truth[cam]).mean()
                assert err < CODEC_TOLERANCE, (pos, t, cam, err)

    # reporting and tracking
    assert (kedro_project / "data/08_reporting/demo_summary.json").is_file()
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["adv_pipeline"], output_format="list")
    assert len(runs) == 1
    params = runs[0].data.params
    assert params["demo.n_episodes"] == str(N_EPISODES) and params["demo.video.codec"] == "libx264"
    assert runs[0].data.metrics["demo_metrics.episodes"] == N_EPISODES

    # kedro-viz builds a static site of the pipelines, printing no warning
    proc = run_kedro(kedro_project, "viz", "build", env={"COLUMNS": "200"})
    assert (kedro_project / "build" / "index.html").is_file()
    assert "warning" not in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr
    # every catalog dataset in its data layer, the layers in data-flow order
    site = json.loads((kedro_project / "build/api/main").read_text())
    assert site["layers"] == [
        "raw", "intermediate", "primary", "estimator", "model_output", "model_input", "models",
        "reporting",
    ]  # fmt: skip
    catalog = yaml.safe_load((kedro_project / "conf/base/catalog.yml").read_text())
    unlayered = [
        n["name"] for n in site["nodes"] if n["type"] == "data" and n["name"] in catalog
        and not n["layer"]
    ]  # fmt: skip
    assert unlayered == []
