"""adv-pipeline serve, started as users start it in its own process: a trained policy
answers openpi-client's WebsocketClientPolicy (the real client, installed with --no-deps)
over loopback like load_policy(...).act in this process, byte for byte, and a refused
request changes nothing."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from openpi_client import msgpack_numpy
from openpi_client.websocket_client_policy import WebsocketClientPolicy
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

from adv_pipeline.errors import InputError
from adv_pipeline.policy import Policy, load_policy, train_policy
from adv_pipeline.policy.config import Guidance
from adv_pipeline.policy.serve import load_server, packb, unpackb
from adv_pipeline.sim import TASK_TEXT

from ..server_process import server_process
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


@pytest.fixture(scope="module")
def served(run_dir, observation, tmp_path_factory) -> Iterator[tuple[int, Policy]]:
    """``adv-pipeline serve`` of ``run_dir`` in its own process (flow noise seed SEED,
    guidance W, requests up to 1 MiB) on a free loopback port, one per module, and the
    same policy loaded in this process meanwhile with the server's seed: (the port, that
    policy). Each act of the policy draws the noise of the server's next answered request
    (a refused request draws none)."""
    log = tmp_path_factory.mktemp("serve_process") / "serve.log"
    args = ["serve", "--checkpoint", str(run_dir), "--port", "0", "--seed", str(SEED),
            "--guidance-scale", str(W), "--max-message-mb", "1"]  # fmt: skip
    with server_process(args, log, r"on ws://127\.0\.0\.1:(\d+)\n") as wait:
        reference = load_policy(run_dir, seed=SEED)
        reference.act(observation, TASKS[-1], Guidance(W))  # compiled while the server starts ...
        reference.reseed(SEED)  # ... and back to the server's first noise
        yield int(wait()[1]), reference


@contextlib.contextmanager
def _client(port: int) -> Iterator[WebsocketClientPolicy]:
    client = WebsocketClientPolicy(host="127.0.0.1", port=port)
    try:
        yield client
    finally:
        client._ws.close()  # WebsocketClientPolicy has no close()


def _same_as(reply: dict, reference: Policy, observation: dict, prompt: str) -> None:
    """``reply`` holds, byte for byte, the actions of ``reference``'s next act."""
    expected = np.asarray(reference.act(observation, prompt, Guidance(W)), np.float32)
    actions = reply["actions"]
    assert actions.dtype == np.float32 and actions.shape == (4, 6)
    assert np.isfinite(actions).all()
    assert actions.tobytes() == expected.tobytes(), np.abs(actions - expected).max()


def _still_answers(client, reference: Policy, observation: dict) -> None:
    """After a refusal: the same process answers the good observation as if the refused
    request had never come (the actions the policy gives as its next answer)."""
    _same_as(client.infer(observation), reference, observation, TASKS[-1])


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


def test_openpi_client_gets_the_policys_actions_and_readable_errors(served, observation, run_dir):
    port, reference = served
    with _client(port) as client:
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
            "max_message_bytes": 2**20,  # --max-message-mb 1
            "checkpoint": str(run_dir / "2"),
            "step": 2,
        }
        reply = client.infer(observation)  # default prompt: the top advantage prompt
        assert reply["server_timing"]["infer_ms"] > 0
        _same_as(reply, reference, observation, TASKS[-1])

        # bad requests are answered before the policy runs (no noise drawn), naming the
        # key, and the same connection goes on
        chw = observation["images"]["top_head"].transpose(2, 0, 1).copy()
        refused = [
            (
                {**observation, "state": observation["state"][:5]},
                r"observation\['state'\]: expected 6 floats.*received a float32 array of shape "
                r"\(5,\)",
            ),
            (
                {**observation, "images": {"top_head": observation["images"]["top_head"]}},
                r"missing camera 'hand_left'.*received \['top_head'\]",
            ),
            (
                {**observation, "images": {**observation["images"], "top_head": chw}},
                r"\(H, W, 3\), received a uint8 array of shape \(3, 32",
            ),
            (
                {**observation, "prompt": "juggle"},
                rf"no task 'juggle'.*tasks are \['{TASK_TEXT}'\]",
            ),
        ]
        for request, error in refused:
            with pytest.raises(RuntimeError, match=error):
                client.infer(request)
            _still_answers(client, reference, observation)

        # a plain task text means its top prompt; full video keys name the cameras as well
        keyed = {f"observation.images.{k}": v for k, v in observation["images"].items()}
        reply = client.infer({**observation, "images": keyed, "prompt": TASK_TEXT})
        _same_as(reply, reference, observation, TASKS[-1])
        reply = client.infer({**observation, "prompt": TASKS[0]})
        _same_as(reply, reference, observation, TASKS[0])

    # a message that is not msgpack gets an error text, and the server goes on
    with connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None) as raw:
        unpackb(raw.recv())
        raw.send(b"\xc1 not msgpack")
        assert raw.recv().startswith("message: expected a msgpack-numpy packed dict")
        raw.send(packb(observation))
        _same_as(unpackb(raw.recv()), reference, observation, TASKS[-1])


def test_the_server_never_sends_non_finite_actions_and_limits_requests(served, observation):
    port, reference = served
    # finite as float64, infinite as the float32 the policy computes in: an error text
    # naming the key (a text frame, which the client raises), no actions
    huge = observation["state"].astype(np.float64)
    huge[3] = 1e300
    with np.errstate(over="ignore"):
        assert np.isfinite(huge).all() and not np.isfinite(huge.astype(np.float32)).all()
    with _client(port) as client:
        with pytest.raises(
            RuntimeError, match=r"observation\['state'\]: expected finite float32.*index 3"
        ):
            client.infer({**observation, "state": huge})
        _still_answers(client, reference, observation)

    # a request over --max-message-mb closes that connection (websocket code 1009) ...
    big = np.zeros((1024, 1024, 3), np.uint8)
    with _client(port) as client:
        with pytest.raises(ConnectionClosedError) as closed:
            client.infer({**observation, "images": {"top_head": big, "hand_left": big}})
        assert closed.value.rcvd.code == 1009
    # ... and the same process goes on answering
    with _client(port) as client:
        _still_answers(client, reference, observation)


def test_a_broken_checkpoint_answers_an_error_not_actions(run_dir, observation, tmp_path):
    """Weights gone NaN: the reply is an error text (what the client raises), no actions."""
    from safetensors.numpy import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    weights = broken / "2" / "model.safetensors"
    tensors = load_file(weights)
    tensors = {k: np.full_like(v, np.nan) if v.dtype.kind == "f" else v for k, v in tensors.items()}
    save_file(tensors, weights)
    reply = load_server(broken, seed=SEED).reply(packb(observation))
    assert isinstance(reply, str) and re.search(r"non-finite actions.*nothing sent", reply)


def test_server_options(run_dir):
    """--prompt as a task text or a full prompt; requests up to a Full-HD RGB frame per
    camera plus 1 MiB unless --max-message-mb says otherwise."""
    server = load_server(run_dir, prompt=TASK_TEXT)
    assert server.default_prompt == TASKS[-1]
    assert server.metadata["max_message_bytes"] == 2 * 1920 * 1080 * 3 + 2**20
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
