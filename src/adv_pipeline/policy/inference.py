"""Load a trained policy and query it: :func:`load_policy`, :class:`Policy`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache, partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from adv_pipeline.checkpoints import Checkpoint, load_checkpoint
from adv_pipeline.lerobot import IMAGE_KEY_PREFIX, camera_name
from adv_pipeline.schema import advantage_label, advantage_prompt, base_task, default_prompt

from .checkpoint_io import PolicyAssets, load_assets, unflatten_params
from .config import Guidance, GuidanceReference
from .images import downsample
from .model import build_model, sample_actions
from .tokenizer import HashTokenizer


class Policy:
    """A trained policy: observation (+ prompt) -> action chunk in dataset units.

    Args:
        params: the network parameters.
        assets: config, tasks, cameras and normalisation statistics of the checkpoint.
        seed: seed of the flow's initial noise (calls draw successive noise from it).
        metadata: the checkpoint's metadata (its training dataset, held-out episodes...).
    """

    def __init__(
        self, params, assets: PolicyAssets, seed: int = 0, metadata: Mapping | None = None
    ):
        self.assets = assets
        self.metadata = dict(metadata or {})
        self.config = assets.config
        self.tokenizer = HashTokenizer(assets.config.tokenizer)
        self.params = jax.tree_util.tree_map(jnp.asarray, params)
        self.action_dim = int(assets.action_stats.mean.shape[0])
        self._encoders = None  # {column: ImageFeatures}, loaded on first use (torch)
        self._rng = np.random.default_rng(seed)
        self.model, self._sample = _sampler(
            assets.config.model, assets.config.tokenizer, self.horizon, self.action_dim
        )

    @property
    def horizon(self) -> int:
        return self.config.data.horizon

    @property
    def camera_keys(self) -> tuple[str, ...]:
        return self.assets.camera_keys

    @property
    def state_keys(self) -> tuple[str, ...]:
        """The dataset columns whose concatenation is the policy's state input."""
        return tuple(self.config.data.state_key)

    @property
    def observed_state_keys(self) -> tuple[str, ...]:
        """The state columns an observation gives (a robot's own sensors); the others are
        derived from the cameras by the encoders saved with the checkpoint."""
        return tuple(k for k in self.state_keys if k not in self.assets.encoders)

    @property
    def state_dims(self) -> dict[str, int]:
        """``{state column: width}`` (empty for checkpoints that did not record them)."""
        return dict(zip(self.state_keys, self.assets.state_dims))

    @property
    def observed_state_dim(self) -> int:
        """Length of an observation's state: its :attr:`observed_state_keys` side by side."""
        if not self.assets.encoders:
            return int(self.assets.state_stats.mean.shape[0])
        dims = dict(zip(self.state_keys, self.assets.state_dims))
        return sum(dims[k] for k in self.observed_state_keys)

    @property
    def input_cameras(self) -> dict[str, str]:
        """``{camera name: video key}`` of every camera an observation must give: the
        network's own and those the image-feature encoders read."""
        out = {camera_name(k): k for k in self.camera_keys}
        for encoder in self.encoders.values():
            for cam in encoder.cameras:
                out.setdefault(cam, IMAGE_KEY_PREFIX + cam)
        return out

    @property
    def encoders(self) -> dict:
        """``{column: ImageFeatures}`` of the state columns computed from the cameras."""
        if self._encoders is None:
            if self.assets.encoders:
                from adv_pipeline.estimation.features import ImageFeatures  # torch

                self._encoders = {k: ImageFeatures(p) for k, p in self.assets.encoders.items()}
            else:
                self._encoders = {}
        return self._encoders

    def full_state(self, images: Mapping[str, np.ndarray], states: np.ndarray) -> np.ndarray:
        """float32 (B, D_state): ``states`` (B, :attr:`observed_state_dim`), the observed
        columns side by side, with the derived columns computed from ``images`` put in
        their ``state_key`` places."""
        states = np.asarray(states, np.float32)
        if not self.assets.encoders:
            return states
        parts, at = [], 0
        for key, dim in zip(self.state_keys, self.assets.state_dims):
            if key in self.assets.encoders:
                parts.append(self.encoders[key](images))
            else:
                parts.append(states[:, at : at + dim])
                at += dim
        return np.concatenate(parts, axis=1)

    @property
    def tasks(self) -> tuple[str, ...]:
        """The training dataset's tasks (prompts of its task_index values)."""
        return self.assets.tasks

    @property
    def default_prompt(self) -> str:
        """The top advantage prompt of the training tasks (``tasks[-1]``), or the plain task
        text for a policy trained without task prompts."""
        prompt = default_prompt(self.tasks)
        return prompt if self.config.data.prompt_from_task else base_task(prompt)

    def reference_prompt(self, prompt: str, reference: GuidanceReference) -> str:
        """The prompt classifier-free guidance extrapolates away from: ``negative``, the
        prompt's task with the worst advantage label of the training tasks (``tasks[0]``'s,
        e.g. ``"<task>, Advantage: negative"``); ``unconditional``, the plain task text
        (learnt through ``awbc.data.prompt_dropout``)."""
        if not self.config.data.prompt_from_task:
            raise ValueError(
                "classifier-free guidance needs a policy trained on advantage prompts; this one "
                "was trained on the plain task text (BC). Fix: guide an AWBC policy, or use "
                "guidance scale 1"
            )
        if reference == "unconditional":
            return base_task(prompt)
        if reference != "negative":
            raise ValueError(f"guidance reference {reference!r}: one of negative, unconditional")
        worst = advantage_label(self.tasks[0])
        if worst is None:
            raise ValueError(
                f"guidance reference negative: the training tasks carry no advantage label "
                f"({self.tasks[0]!r}). Fix: use the unconditional reference"
            )
        return advantage_prompt(base_task(prompt), worst)

    def reseed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def _camera_images(self, images: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
        """uint8 (B, C, S, S, 3) in the training camera order."""
        size = self.config.data.image_size
        if not self.camera_keys:
            return np.zeros((batch, 0, size, size, 3), np.uint8)
        out = []
        for key in self.camera_keys:
            short = camera_name(key)
            img = images.get(key, images.get(short))
            if img is None:
                raise KeyError(
                    f"policy needs camera {key!r} (or {short!r}); the observation has "
                    f"{sorted(images)}"
                )
            out.append(downsample(img, size))
        return np.stack(out, axis=1)

    def act_batch(
        self,
        images: Mapping[str, np.ndarray],
        states: np.ndarray,
        prompts: Sequence[str] | str | None = None,
        guidance: Guidance | None = None,
        complete_states: bool = False,
    ) -> np.ndarray:
        """Action chunks for B observations.

        Args:
            images: ``{camera: uint8 (B, H, W, 3)}`` (camera names or video keys), every
                camera of :attr:`input_cameras`.
            states: float (B, :attr:`observed_state_dim`) in dataset units; with
                ``complete_states``, (B, D_state) with the derived columns already in (as a
                dataset stores them), and no encoder runs.
            prompts: one prompt per observation, one for all, or None (:attr:`default_prompt`).
            guidance: classifier-free guidance (None: the plain conditional prompt).

        Returns:
            float32 (B, horizon, D_action) in dataset units, within the training data's
            per-dimension [min, max] (never beyond what the normalisation statistics imply).
        """
        states = np.asarray(states, np.float32)
        if not complete_states:
            states = self.full_state(images, states)
        b = len(states)
        if prompts is None or isinstance(prompts, str):
            prompts = [prompts or self.default_prompt] * b
        tokens, _ = self.tokenizer.encode_batch(list(prompts))
        reference = tokens  # unused unguided
        scale = 1.0 if guidance is None else float(guidance.scale)
        if guidance is not None and guidance.guided:
            reference, _ = self.tokenizer.encode_batch(
                [self.reference_prompt(p, guidance.reference) for p in prompts]
            )
        noise = self._rng.standard_normal((b, self.horizon, self.action_dim)).astype(np.float32)
        out = self._sample(
            self.params,
            self._camera_images(images, b),
            self.assets.state_stats.normalize(states),
            tokens,
            reference,
            noise,
            guidance_scale=scale,
            steps=self.config.model.flow_steps,
        )
        return self.assets.action_stats.unnormalize(np.asarray(out))

    def act(
        self,
        observation,
        prompt: str | None = None,
        guidance: Guidance | None = None,
    ) -> np.ndarray:
        """One chunk (horizon, D_action) for an observation with ``.images`` and ``.state``
        or a dict with those keys (``state``: the :attr:`observed_state_keys` side by side),
        or a simulator :class:`adv_pipeline.sim.Observation` (its columns picked by name)."""
        if isinstance(observation, Mapping):
            images, state = observation["images"], observation["state"]
        elif hasattr(observation, "vector"):
            images, state = observation.images, observation.vector(self.observed_state_keys)
        else:
            images, state = observation.images, observation.state
        batch_images = {k: np.asarray(v)[None] for k, v in images.items()}
        return self.act_batch(
            batch_images,
            np.asarray(state)[None],
            [prompt or self.default_prompt],
            guidance,
        )[0]


@lru_cache(maxsize=8)
def _sampler(model_config, tokenizer, horizon: int, action_dim: int) -> tuple:
    """The network and its jitted sampler, one per architecture in a process: policies of
    the same shape (AWBC and BC, reloaded checkpoints) compile once."""
    model = build_model(model_config, tokenizer.vocab_size, tokenizer.max_len, horizon, action_dim)
    sample = jax.jit(partial(sample_actions, model), static_argnames=("guidance_scale", "steps"))
    return model, sample


def load_policy(
    checkpoint: Checkpoint | str | Path, step: int | None = None, seed: int = 0
) -> Policy:
    """A :class:`Policy` from a checkpoint, a step directory or a run directory (latest step)."""
    if not isinstance(checkpoint, Checkpoint):
        path = Path(checkpoint)
        if path.name.isdigit() and (path / "metadata.json").is_file() and step is None:
            checkpoint = load_checkpoint(path.parent, int(path.name))
        else:
            checkpoint = load_checkpoint(path, step)
    return Policy(
        unflatten_params(checkpoint.load_weights()),
        load_assets(checkpoint),
        seed=seed,
        metadata=checkpoint.metadata,
    )
