"""Serve a trained policy over openpi's websocket policy-server protocol, so that robots
running ``openpi-client`` (``WebsocketClientPolicy``) connect unchanged.

Protocol (one websocket, binary msgpack-numpy frames, no compression; a request may hold
at most :func:`default_max_message_bytes` unless the server is started with more):

* on connect the server sends :attr:`PolicyServer.metadata`;
* each request is an observation ``{"state": (D_state,) floats in dataset units,
  "images": {camera: uint8 (H, W, 3)}, "prompt": str (optional)}``, camera names short
  (``top_head``) or full video keys (``observation.images.top_head``);
* each reply is ``{"actions": float32 (horizon, action_dim) in dataset units,
  "server_timing": {"infer_ms": float}}``, or an error text (a text frame), which the
  client raises as ``RuntimeError``; the connection keeps serving after an error. Images
  of any size are resized to the policy's input (as in training); states and actions are
  finite float32 (a value that is not, e.g. ``1e300`` cast to float32, is an error).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

from adv_pipeline.checkpoints import METADATA_FILE, Checkpoint, load_checkpoint
from adv_pipeline.errors import InputError
from adv_pipeline.schema import ADVANTAGE_SEPARATOR, base_task

from .config import Guidance

if TYPE_CHECKING:  # the policy (and JAX) load only with a checkpoint
    from .inference import Policy

log = logging.getLogger(__name__)

DEFAULT_PORT = 8000  # openpi's
# a request's size: a Full-HD RGB frame per camera (the largest a robot camera usually
# sends), plus room for the state, the prompt and msgpack's framing
FRAME_BYTES = 1920 * 1080 * 3
OVERHEAD_BYTES = 2**20


def default_max_message_bytes(n_cameras: int) -> int:
    """The largest request a server for a policy with ``n_cameras`` cameras accepts."""
    return n_cameras * FRAME_BYTES + OVERHEAD_BYTES


# ---------------------------------------------------------------------------- codec
def _encode(obj: Any) -> Any:
    """numpy arrays and scalars as openpi_client.msgpack_numpy writes them."""
    if isinstance(obj, np.ndarray | np.generic) and obj.dtype.kind in "VOc":
        raise ValueError(f"unsupported dtype {obj.dtype}")
    if isinstance(obj, np.ndarray):
        return {
            b"__ndarray__": True,
            b"data": obj.tobytes(),
            b"dtype": obj.dtype.str,
            b"shape": obj.shape,
        }
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def _decode(obj: dict) -> Any:
    if b"__ndarray__" in obj or b"__npgeneric__" in obj:
        dtype = np.dtype(obj[b"dtype"])
        if dtype.kind in "VOc":
            raise ValueError(f"unsupported dtype {dtype}")
        if b"__npgeneric__" in obj:
            return dtype.type(obj[b"data"])
        return np.ndarray(buffer=obj[b"data"], dtype=dtype, shape=obj[b"shape"])
    return obj


def packb(obj: Any) -> bytes:
    """msgpack bytes of ``obj`` (dicts, lists, numbers, str, numpy arrays and scalars)."""
    return msgpack.packb(obj, default=_encode)


def unpackb(data: bytes) -> Any:
    """The object packed by :func:`packb` or ``openpi_client.msgpack_numpy``."""
    return msgpack.unpackb(data, object_hook=_decode)


# ---------------------------------------------------------------------------- requests
class RequestError(ValueError):
    """A request the server cannot answer; its text goes back to the client."""


def _received(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, list | tuple | Mapping):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"{type(value).__name__} {value!r:.40}"


def resolve_prompt(policy: Policy, prompt: str) -> str:
    """The prompt to condition on: a plain task text becomes its top advantage prompt when
    the policy was trained on advantage prompts; a prompt with an advantage part as is."""
    if ADVANTAGE_SEPARATOR in prompt or not policy.config.data.prompt_from_task:
        return prompt
    matches = [t for t in policy.tasks if base_task(t) == prompt]
    if not matches:
        known = sorted({base_task(t) for t in policy.tasks})
        raise RequestError(
            f"no task {prompt!r} in this policy; its tasks are {known}. Fix: use one of them "
            f"or a full prompt '<task>{ADVANTAGE_SEPARATOR}<label>'"
        )
    return matches[-1]  # tasks are ordered worst to best advantage


def resolve_checkpoint(path: str | Path, step: int | None = None) -> Checkpoint:
    """The checkpoint :func:`load_policy` reads: a step folder, or ``step`` (default the
    latest) of a run folder or of the latest run of a folder of runs."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"{path}: no such folder. Fix: pass a policy run folder (e.g. "
            f"data/06_models/awbc/<run>) or one of its step folders"
        )
    if path.name.isdigit() and (path / METADATA_FILE).is_file() and step is None:
        return load_checkpoint(path.parent, int(path.name))
    return load_checkpoint(path, step)


# ---------------------------------------------------------------------------- server
class PolicyServer:
    """Answers openpi-client requests with a :class:`Policy`'s action chunks.

    Args:
        policy: the loaded policy (its RNG draws each request's flow noise in turn).
        guidance: classifier-free guidance passed to ``Policy.act`` (None: none).
        prompt: the default prompt (a task text or a full advantage prompt); None: the
            policy's default prompt.
        checkpoint: the step folder the policy came from, for the metadata.
    """

    def __init__(
        self,
        policy: Policy,
        guidance: Guidance | None = None,
        prompt: str | None = None,
        checkpoint: Checkpoint | None = None,
        max_message_bytes: int | None = None,
    ):
        self.policy = policy
        self.guidance = guidance if guidance is not None and guidance.guided else None
        self.default_prompt = resolve_prompt(policy, prompt) if prompt else policy.default_prompt
        if self.guidance is not None:  # a policy that cannot be guided fails here, not per request
            policy.reference_prompt(self.default_prompt, self.guidance.reference)
        self.state_dim = policy.observed_state_dim
        self.cameras = policy.input_cameras  # short -> key
        # larger requests are refused by the websocket layer (close code 1009)
        self.max_message_bytes = int(
            max_message_bytes or default_max_message_bytes(len(self.cameras))
        )
        self.checkpoint = checkpoint
        self._act_lock = threading.Lock()  # one inference at a time: the RNG draws in order
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.listening = False

    @property
    def metadata(self) -> dict[str, Any]:
        """Sent to each client on connect."""
        return {
            "action_dim": int(self.policy.action_dim),
            "horizon": int(self.policy.horizon),
            "state_dim": self.state_dim,
            "state_keys": list(self.policy.observed_state_keys),
            "cameras": list(self.cameras),
            "tasks": list(self.policy.tasks),
            "default_prompt": self.default_prompt,
            "guidance_scale": self.guidance.scale if self.guidance else 1.0,
            "guidance_reference": self.guidance.reference if self.guidance else None,
            "max_message_bytes": self.max_message_bytes,
            "checkpoint": str(self.checkpoint.path) if self.checkpoint else None,
            "step": self.checkpoint.step if self.checkpoint else None,
        }

    def parse(self, message: bytes | str) -> tuple[dict[str, np.ndarray], np.ndarray, str]:
        """(images by video key, float32 (D_state,) state, prompt) of a request, or
        :class:`RequestError` naming the key, what was expected and what was received."""
        if isinstance(message, str):
            raise RequestError("message: expected a binary msgpack frame, received a text frame")
        try:
            obs = unpackb(message)
        except Exception as exc:
            raise RequestError(
                f"message: expected a msgpack-numpy packed dict (openpi_client's Packer), "
                f"received {len(message)} bytes that do not decode ({type(exc).__name__} {exc})"
            ) from None
        if not isinstance(obs, Mapping):
            raise RequestError(
                f"observation: expected a dict with 'state' and 'images', received {_received(obs)}"
            )
        state = self._state(obs)
        return self._images(obs), state, self._prompt(obs)

    def _state(self, obs: Mapping) -> np.ndarray:
        expected = f"{self.state_dim} floats in dataset units (shape ({self.state_dim},))"
        if "state" not in obs:
            raise RequestError(
                f"observation['state']: missing; expected {expected}; received keys {sorted(obs)}"
            )
        raw = obs["state"]
        try:
            state = np.asarray(raw) if isinstance(raw, np.ndarray | list | tuple) else None
        except ValueError:  # a ragged list
            state = None
        if state is None or state.dtype.kind not in "fiu" or state.shape != (self.state_dim,):
            raise RequestError(
                f"observation['state']: expected {expected}, received {_received(raw)}"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            state32 = state.astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(state32))
        if len(bad):
            raise RequestError(
                f"observation['state']: expected finite float32 values, received "
                f"{state[bad[0]]!r} at index {int(bad[0])} (beyond float32's range of "
                f"+-3.4e38, or not a number)"
            )
        return state32

    def _images(self, obs: Mapping) -> dict[str, np.ndarray]:
        images = obs.get("images")
        if not isinstance(images, Mapping):
            raise RequestError(
                f"observation['images']: expected a dict {{camera: uint8 (H, W, 3)}} with cameras "
                f"{list(self.cameras)}, received "
                + (f"keys {sorted(obs)}" if images is None else _received(images))
            )
        out = {}
        for short, key in self.cameras.items():
            img = images.get(short, images.get(key))
            if img is None:
                raise RequestError(
                    f"observation['images']: missing camera {short!r} (or {key!r}); expected "
                    f"cameras {list(self.cameras)}, received {sorted(images)}"
                )
            if not (
                isinstance(img, np.ndarray)
                and img.dtype == np.uint8
                and img.ndim == 3
                and img.shape[2] == 3
                and img.size
            ):
                shape = getattr(img, "shape", ())
                hint = " (channels first?)" if len(shape) == 3 and shape[0] == 3 else ""
                raise RequestError(
                    f"observation['images'][{short!r}]: expected a uint8 array of shape "
                    f"(H, W, 3), received {_received(img)}{hint}"
                )
            out[key] = img
        return out

    def _prompt(self, obs: Mapping) -> str:
        prompt = obs.get("prompt")
        if prompt is None or prompt == "":
            return self.default_prompt
        if not isinstance(prompt, str):
            raise RequestError(
                f"observation['prompt']: expected a str, received {_received(prompt)}"
            )
        try:
            return resolve_prompt(self.policy, prompt)
        except RequestError as exc:
            raise RequestError(f"observation['prompt']: {exc}") from None

    def reply(self, message: bytes | str) -> bytes | str:
        """The answer to one request: packed actions, or an error text."""
        try:
            images, state, prompt = self.parse(message)
        except RequestError as exc:
            log.debug("bad request: %s", exc)
            return str(exc)
        with self._act_lock:
            start = time.perf_counter()
            try:
                actions = self.policy.act(
                    {"images": images, "state": state},
                    prompt,
                    self.guidance,
                )
            except Exception as exc:
                log.exception("inference failed")
                return f"inference failed: {type(exc).__name__}: {exc}"
            infer_ms = (time.perf_counter() - start) * 1e3
        actions = np.ascontiguousarray(actions, dtype=np.float32)
        if not np.isfinite(actions).all():  # never sent to a robot
            log.error("inference gave non-finite actions for prompt %r", prompt)
            return (
                f"inference failed: the policy gave non-finite actions for prompt {prompt!r} "
                f"(nothing sent); the checkpoint {self.metadata['checkpoint']} may be broken"
            )
        return packb({"actions": actions, "server_timing": {"infer_ms": infer_ms}})

    async def _handle(self, conn: ServerConnection) -> None:
        log.info("client %s connected", ":".join(map(str, conn.remote_address[:2])))
        try:
            await conn.send(packb(self.metadata))
            async for message in conn:
                # inference in a worker thread keeps the event loop (pings, other clients) alive
                await conn.send(await asyncio.to_thread(self.reply, message))
        except ConnectionClosed:
            pass

    async def run(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        on_ready: Callable[[str, int], None] | None = None,
    ) -> None:
        """Serve until :meth:`stop` (or cancellation); ``on_ready(host, port)`` once
        listening (port 0 picks a free port)."""
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with ws_serve(
            self._handle, host, port, compression=None, max_size=self.max_message_bytes
        ) as server:
            self.listening = True
            if on_ready:
                on_ready(*server.sockets[0].getsockname()[:2])
            await self._stop.wait()
        self.listening = False

    def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Serve from a background thread; returns the (host, port) listened on."""
        ready: concurrent.futures.Future = concurrent.futures.Future()

        def main() -> None:
            try:
                asyncio.run(self.run(host, port, lambda h, p: ready.set_result((h, p))))
            except BaseException as exc:
                if ready.done():
                    raise
                ready.set_exception(exc)

        self._thread = threading.Thread(target=main, name="policy-server", daemon=True)
        self._thread.start()
        return ready.result()

    def stop(self) -> None:
        """Close the connections and stop serving (from any thread); waits for the
        background thread of :meth:`start`."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> PolicyServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def load_server(
    checkpoint: str | Path,
    step: int | None = None,
    seed: int = 0,
    guidance: Guidance | None = None,
    prompt: str | None = None,
    max_message_bytes: int | None = None,
) -> PolicyServer:
    """A :class:`PolicyServer` for a run folder (latest step, or ``step``) or a step folder;
    ``seed`` seeds the flow noise as in :func:`load_policy`."""
    ckpt = resolve_checkpoint(checkpoint, step)
    from .inference import load_policy

    try:
        policy = load_policy(ckpt.run_dir, step=ckpt.step, seed=seed)
    except InputError:
        raise
    except (OSError, ValueError, KeyError) as exc:  # missing or unreadable files of the step
        why = " ".join(str(exc).split()) or type(exc).__name__
        fix = "" if "Fix:" in why else ". Fix: point to a policy run folder or step folder"
        raise InputError(f"{ckpt.path}: cannot load a policy: {why}{fix}") from exc
    try:
        return PolicyServer(policy, guidance, prompt, ckpt, max_message_bytes)
    except RequestError as exc:
        raise InputError(f"--prompt: {exc}") from None
    except ValueError as exc:  # a policy that cannot be guided so
        raise InputError(f"--guidance-scale {guidance.scale:g}: {exc}") from None


def serve(
    checkpoint: str | Path,
    step: int | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    guidance: Guidance | None = None,
    prompt: str | None = None,
    seed: int = 0,
    max_message_bytes: int | None = None,
) -> None:
    """Load a checkpoint and serve it until interrupted."""
    server = load_server(checkpoint, step, seed, guidance, prompt, max_message_bytes)

    def ready(h: str, p: int) -> None:
        ckpt = server.checkpoint
        # flushed: a supervisor or a test reading a pipe learns the port (--port 0) now
        print(f"serving {ckpt.path} (step {ckpt.step}) on ws://{h}:{p}")
        g = server.guidance
        guided = f"guidance scale {g.scale} (reference: {g.reference})" if g else "no guidance"
        print(
            f"default prompt: {server.default_prompt!r}, {guided}; requests up to "
            f"{server.max_message_bytes / 2**20:.1f} MiB",
            flush=True,
        )

    try:
        asyncio.run(server.run(host, port, ready))
    except OSError as exc:
        if server.listening:
            raise
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. Fix: pass another --port "
            f"or --host"
        ) from None
