"""adv-pipeline serve: a trained policy answers openpi-client's WebsocketClientPolicy (the
real client, installed with --no-deps) like load_policy(...).act in process."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
from openpi_client import msgpack_numpy
from openpi_client.websocket_client_policy import WebsocketClientPolicy
from websockets.sync.client import connect

from adv_pipeline.errors import InputError
from adv_pipeline.policy import load_policy, train_policy
from adv_pipeline.policy.serve import load_server, packb, unpackb
from adv_pipeline.sim import TASK_TEXT

from .conftest import REPO, TASKS, tiny_policy_config, tiny_train_config

# openpi-client 0.1.2 calls websockets' connect() outside a `with`, which websockets 17 deprecates
pytestmark = pytest.mark.filterwarnings(
    r"ignore:connect\(\) must be used as a context manager:DeprecationWarning"
)

SEED, W = 11, 1.5


@pytest.fixture(scope="module")
def run_dir(labeled_dataset, tmp_path_factory):
    run = tmp_path_factory.mktemp("serve") / "awbc"
    config = tiny_train_config(steps=2, save_interval=1)
    train_policy(labeled_dataset, tiny_policy_config(), config, run)
    return run


@pytest.fixture(scope="module")
def observation(labeled_dataset) -> dict:
    """Frame 5 of episode 1: state (6,) float32, images {short camera: (32, 32, 3) uint8}."""
    frames = labeled_dataset.get_frames(1, [5], cameras=["top_head", "hand_left"])
    state = labeled_dataset.read_episode(1, ["observation.state"])["observation.state"][5]
    return {"state": state, "images": {k.rsplit(".", 1)[-1]: v[0] for k, v in frames.items()}}


def test_codec_matches_openpi_client():
    arrays = [
        (np.arange(6) % 3).astype(d).reshape(2, 3) for d in ("uint8", "float32", "int64", "bool")
    ]
    obj = {"a": arrays, "s": np.float32(1.5), "n": {"t": "x", "i": 3}}
    for ours, theirs in ((packb, msgpack_numpy.unpackb), (msgpack_numpy.packb, unpackb)):
        back = theirs(ours(obj))
        for a, b in zip(obj["a"], back["a"], strict=True):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
        assert back["s"] == obj["s"] and back["s"].dtype == np.float32 and back["n"] == obj["n"]


def test_openpi_client_gets_the_policys_actions_and_readable_errors(run_dir, observation):
    before = set(threading.enumerate())
    reference = load_policy(run_dir, seed=SEED)
    with load_server(run_dir, seed=SEED, guidance_scale=W) as server:
        _, port = server.start(port=0)
        client = WebsocketClientPolicy(host="127.0.0.1", port=port)
        assert client.get_server_metadata() == {
            "action_dim": 6,
            "horizon": 4,
            "state_dim": 6,
            "state_keys": ["observation.state"],
            "cameras": ["top_head", "hand_left"],
            "tasks": TASKS,
            "default_prompt": TASKS[-1],
            "guidance_scale": W,
            "guidance_reference": "negative",
            "max_message_bytes": 2 * 1920 * 1080 * 3 + 2**20,
            "checkpoint": str(run_dir / "2"),
            "step": 2,
        }
        reply = client.infer(observation)  # default prompt: the top advantage prompt
        assert reply["actions"].shape == (4, 6) and reply["actions"].dtype == np.float32
        assert reply["server_timing"]["infer_ms"] > 0
        first = reference.act(observation, TASKS[-1], W)
        np.testing.assert_allclose(reply["actions"], first, rtol=0, atol=1e-6)

        # bad requests are answered before the policy runs (no noise drawn) ...
        short = (
            r"observation\['state'\]: expected 6 floats.*received a float32 array of shape \(5,\)"
        )
        with pytest.raises(RuntimeError, match=short):
            client.infer({**observation, "state": observation["state"][:5]})
        with pytest.raises(
            RuntimeError, match=r"missing camera 'hand_left'.*received \['top_head'\]"
        ):
            client.infer({**observation, "images": {"top_head": observation["images"]["top_head"]}})
        chw = observation["images"]["top_head"].transpose(2, 0, 1).copy()
        with pytest.raises(
            RuntimeError, match=r"\(H, W, 3\), received a uint8 array of shape \(3, 32"
        ):
            client.infer({**observation, "images": {**observation["images"], "top_head": chw}})
        with pytest.raises(RuntimeError, match=rf"no task 'juggle'.*tasks are \['{TASK_TEXT}'\]"):
            client.infer({**observation, "prompt": "juggle"})

        # ... and the same connection keeps serving: a plain task text means its top prompt,
        # full video keys name the cameras as well as short names
        keyed = {f"observation.images.{k}": v for k, v in observation["images"].items()}
        reply = client.infer({**observation, "images": keyed, "prompt": TASK_TEXT})
        np.testing.assert_allclose(
            reply["actions"], reference.act(observation, TASKS[-1], W), rtol=0, atol=1e-6
        )
        reply = client.infer({**observation, "prompt": TASKS[0]})
        np.testing.assert_allclose(
            reply["actions"], reference.act(observation, TASKS[0], W), rtol=0, atol=1e-6
        )

        # a message that is not msgpack gets an error text, and the server goes on
        with connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None) as raw:
            unpackb(raw.recv())
            raw.send(b"\xc1 not msgpack")
            assert raw.recv().startswith("message: expected a msgpack-numpy packed dict")
            raw.send(packb(observation))
            assert unpackb(raw.recv())["actions"].shape == (4, 6)
    client._ws.close()  # WebsocketClientPolicy has no close(); the server closed it already
    assert not server.listening
    assert set(threading.enumerate()) <= before


def test_server_prompt_option(run_dir):
    assert load_server(run_dir, prompt=TASK_TEXT).default_prompt == TASKS[-1]
    assert load_server(run_dir / "1", prompt=TASKS[0]).metadata["step"] == 1
    with pytest.raises(InputError, match=r"--prompt: no task 'juggle' in this policy"):
        load_server(run_dir, prompt="juggle")


def test_cli_bad_checkpoint_is_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "adv_pipeline", "serve", "--checkpoint", "/nonexistent"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.startswith("Error: /nonexistent: no such folder. Fix:")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_server_never_sends_non_finite_actions_and_limits_requests(
    run_dir, observation, tmp_path
):
    import shutil

    from safetensors.numpy import load_file, save_file
    from websockets.exceptions import ConnectionClosedError

    with load_server(run_dir, seed=SEED, max_message_bytes=2**20) as server:
        _, port = server.start(port=0)
        client = WebsocketClientPolicy(host="127.0.0.1", port=port)
        # finite as float64, infinite as the float32 the policy computes in
        huge = observation["state"].astype(np.float64)
        huge[3] = 1e300
        with pytest.raises(RuntimeError, match=r"state'\]: expected finite float32.*index 3"):
            client.infer({**observation, "state": huge})
        # a request over the limit closes that connection (websocket code 1009) ...
        big = np.zeros((1024, 1024, 3), np.uint8)
        with connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None) as raw:
            unpackb(raw.recv())
            raw.send(packb({**observation, "images": {"top_head": big, "hand_left": big}}))
            with pytest.raises(ConnectionClosedError) as closed:
                raw.recv()
            assert closed.value.rcvd.code == 1009
        # ... and the server goes on answering
        assert client.infer(observation)["actions"].shape == (4, 6)
    client._ws.close()

    # a checkpoint whose weights went NaN: an error text, no actions sent
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    weights = broken / "2" / "model.safetensors"
    tensors = load_file(weights)
    tensors = {k: np.full_like(v, np.nan) if v.dtype.kind == "f" else v for k, v in tensors.items()}
    save_file(tensors, weights)
    with load_server(broken, seed=SEED) as server:
        _, port = server.start(port=0)
        client = WebsocketClientPolicy(host="127.0.0.1", port=port)
        with pytest.raises(RuntimeError, match=r"non-finite actions.*nothing sent"):
            client.infer(observation)
    client._ws.close()
