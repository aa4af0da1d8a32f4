"""Interoperability check: LeRobot's own ``LeRobotDataset`` reads datasets we wrote and sees
what our reader sees.

    python benchmarks/lerobot_interop.py DATASET [DATASET ...]
        [--lerobot-python /work/lerobot061-venv/bin/python] [--frames 4]

LeRobot 0.6.1 (the default, /work/lerobot061-venv) reads format v3.0; for v2.1 pass
``--lerobot-python /work/lerobot033-venv/bin/python`` (LeRobot 0.3.3, the last release that
reads v2.1). For each dataset, LeRobot (in its own environment, see
tests/fixtures/lerobot_v30/README.md) loads it through
tests/fixtures/lerobot_v30/load_with_lerobot.py and reports, at the first and last frame
of every episode and ``--frames`` frames between, the frame's index, episode, frame
index, timestamp, task string and each camera's decoded picture (mean per channel,
uint8). The same frames are read with our reader; every field must agree (pictures
within 0.5 levels: both decode the same stream with FFmpeg). Prints one line per
dataset and exits 1 on any disagreement.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LOADER = REPO / "tests" / "fixtures" / "lerobot_v30" / "load_with_lerobot.py"
PICTURE_TOLERANCE = 0.5  # uint8 levels, per channel mean


def sample_indices(ds, between: int) -> list[int]:
    """First and last frame of every episode and ``between`` frames spread inside each."""
    out: set[int] = set()
    for e, (lo, hi) in enumerate(zip(ds.offsets[:-1], ds.offsets[1:])):
        out.update(np.linspace(lo, hi - 1, between + 2).round().astype(int).tolist())
    return sorted(out)


def check(root: Path, python: str, between: int) -> list[str]:
    """Disagreements between LeRobot's view of ``root`` and ours (empty: none)."""
    from adv_pipeline.lerobot import LeRobotDatasetReader

    ds = LeRobotDatasetReader(root)
    indices = sample_indices(ds, between)
    proc = subprocess.run(
        [python, str(LOADER), str(root), "--indices", ",".join(map(str, indices))],
        capture_output=True,
        text=True,
    )
    theirs = json.loads(proc.stdout or "{}")
    if not theirs.get("ok"):
        return [f"LeRobot could not load it: {theirs.get('error') or proc.stderr[-2000:]}"]
    problems = []
    if (theirs["num_episodes"], theirs["num_frames"]) != (ds.num_episodes, ds.num_frames):
        problems.append(
            f"LeRobot sees {theirs['num_episodes']} episodes, {theirs['num_frames']} frames; "
            f"we see {ds.num_episodes}, {ds.num_frames}"
        )
    cols = ds.read_columns(["index", "episode_index", "frame_index", "timestamp", "task_index"])
    for s in theirs["samples"]:
        i = s["i"]
        ours = {k: v[i].item() for k, v in cols.items()}
        for k in ("index", "episode_index", "frame_index", "task_index"):
            if int(s[k]) != int(ours[k]):
                problems.append(f"frame {i}: {k} {s[k]} (LeRobot) != {ours[k]} (ours)")
        if abs(float(s["timestamp"]) - float(ours["timestamp"])) > 1e-6:
            problems.append(f"frame {i}: timestamp {s['timestamp']} != {ours['timestamp']}")
        task = ds.tasks[int(ours["task_index"])]
        if s["task"] != task:
            problems.append(f"frame {i}: task {s['task']!r} (LeRobot) != {task!r} (ours)")
        frames = ds.get_frames(int(ours["episode_index"]), [int(ours["frame_index"])])
        for key, img in s["images"].items():
            mine = frames[key][0].reshape(-1, 3).mean(0)
            gap = np.abs(np.array(img["channel_means"]) - mine).max()
            if gap > PICTURE_TOLERANCE:
                problems.append(f"frame {i}: {key} differs by {gap:.2f} levels (channel means)")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--lerobot-python", default="/work/lerobot061-venv/bin/python")
    parser.add_argument("--frames", type=int, default=4, help="frames checked inside each episode")
    args = parser.parse_args()
    lerobot = subprocess.run(
        [args.lerobot_python, "-c", "import importlib.metadata as m; print(m.version('lerobot'))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    failed = False
    for root in args.datasets:
        from adv_pipeline.lerobot import LeRobotDatasetReader

        ds = LeRobotDatasetReader(root)
        problems = check(root, args.lerobot_python, args.frames)
        n = len(sample_indices(ds, args.frames))
        verdict = "agrees" if not problems else f"{len(problems)} disagreements"
        print(
            f"{root}: {ds.version}, {ds.num_episodes} episodes, {ds.num_frames} frames, "
            f"{len(ds.tasks)} tasks; LeRobot {lerobot or '?'} {verdict} on {n} frames (index, "
            f"episode, frame index, timestamp, task string, {len(ds.video_keys)} camera(s))"
        )
        for p in problems[:10]:
            print("   ", p)
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
