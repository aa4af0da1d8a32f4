"""The policy network (flax linen): cameras + state + prompt -> action chunk.

* each camera: a small stride-2 CNN, flattened, projected to ``image_features``;
* state: one dense layer;
* prompt: token + position embeddings, one pre-norm transformer block (padding masked),
  mean-pooled over real tokens;
* action head: a residual MLP over [noisy chunk, flow time, observation features]; every
  block is FiLM-modulated (scale, shift) by the prompt, so the prompt can switch regimes.

With ``head="flow"`` the network predicts the flow-matching velocity ``noise - actions``
at ``x_t = t * noise + (1 - t) * actions`` (pi0); with ``head="mse"`` it ignores x_t and
t and predicts the (normalised) chunk directly.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from .config import ModelConfig


def time_embedding(t: jax.Array, dim: int = 32) -> jax.Array:
    """Sinusoidal embedding of flow time t (B,) in [0, 1] -> (B, dim)."""
    freqs = jnp.exp(jnp.linspace(0.0, jnp.log(1000.0), dim // 2))
    ang = t[:, None] * freqs[None, :] * jnp.pi
    return jnp.concatenate([jnp.sin(ang), jnp.cos(ang)], axis=-1)


class CameraEncoder(nn.Module):
    channels: tuple[int, ...]
    features: int

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """uint8 (B, S, S, 3) -> (B, features)."""
        x = images.astype(jnp.float32) / 127.5 - 1.0
        for c in self.channels:
            x = nn.gelu(nn.Conv(c, (3, 3), strides=(2, 2))(x))
        return nn.Dense(self.features)(x.reshape(x.shape[0], -1))


class PromptEncoder(nn.Module):
    vocab_size: int
    max_len: int
    dim: int
    heads: int

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        """int32 (B, L) token ids (0 = padding) -> (B, dim)."""
        mask = tokens > 0
        x = nn.Embed(self.vocab_size, self.dim)(tokens)
        x = (
            x
            + self.param("position", nn.initializers.normal(0.02), (self.max_len, self.dim))[
                None, : tokens.shape[1]
            ]
        )
        attn_mask = nn.make_attention_mask(mask, mask)
        x = x + nn.MultiHeadDotProductAttention(self.heads, qkv_features=self.dim, use_bias=False)(
            nn.LayerNorm()(x), mask=attn_mask
        )
        h = nn.LayerNorm()(x)
        x = x + nn.Dense(self.dim)(nn.gelu(nn.Dense(2 * self.dim)(h)))
        w = mask[..., None].astype(x.dtype)
        return nn.LayerNorm()((x * w).sum(1) / jnp.maximum(w.sum(1), 1.0))


class ActionPolicy(nn.Module):
    """Velocity (flow) or chunk (mse) predictor; see the module docstring."""

    config: ModelConfig
    vocab_size: int
    max_len: int
    horizon: int
    action_dim: int

    @nn.compact
    def __call__(
        self, images: jax.Array, state: jax.Array, tokens: jax.Array, x_t: jax.Array, t: jax.Array
    ) -> jax.Array:
        """images uint8 (B, C, S, S, 3), state (B, Ds), tokens (B, L), x_t (B, H, Da), t (B,)
        -> (B, H, Da): the velocity (flow) or the normalised chunk (mse)."""
        c = self.config
        feats = [
            CameraEncoder(c.conv_channels, c.image_features, name=f"camera_{i}")(images[:, i])
            for i in range(images.shape[1])
        ]
        feats.append(nn.Dense(c.image_features, name="state_proj")(state))
        text = PromptEncoder(
            self.vocab_size, self.max_len, c.text_dim, c.text_heads, name="prompt_encoder"
        )(tokens)
        obs = nn.gelu(nn.Dense(c.width, name="obs_proj")(jnp.concatenate([*feats, text], axis=-1)))
        b = x_t.shape[0]
        if c.head == "flow":
            inp = jnp.concatenate([x_t.reshape(b, -1), time_embedding(t), obs], axis=-1)
        else:
            inp = obs
        h = nn.Dense(c.width, name="head_in")(inp)
        for i in range(c.depth):
            scale, shift = jnp.split(
                nn.Dense(2 * c.width, name=f"film_{i}", kernel_init=nn.initializers.zeros)(text),
                2,
                axis=-1,
            )
            y = nn.LayerNorm(name=f"norm_{i}")(h) * (1.0 + scale) + shift
            y = nn.Dense(c.width, name=f"mlp_{i}_b")(
                nn.gelu(nn.Dense(2 * c.width, name=f"mlp_{i}_a")(y))
            )
            h = h + y
        out = nn.Dense(self.horizon * self.action_dim, name="head_out")(nn.gelu(h))
        return out.reshape(b, self.horizon, self.action_dim)


def build_model(
    config: ModelConfig, vocab_size: int, max_len: int, horizon: int, action_dim: int
) -> ActionPolicy:
    return ActionPolicy(config, vocab_size, max_len, horizon, action_dim)


def training_loss(model: ActionPolicy, params, batch: dict[str, jax.Array]) -> jax.Array:
    """Masked mean squared error of the velocity (flow) or chunk (mse), per action element,
    each sample weighted by ``batch["weight"]`` (b,) divided by the batch's largest (the
    weighted mean does not change; all-equal weights are exactly 1, plain BC)."""
    actions, mask = batch["actions"], batch["mask"].astype(jnp.float32)
    if model.config.head == "flow":
        t = batch["time"]
        x_t = t[:, None, None] * batch["noise"] + (1.0 - t[:, None, None]) * actions
        target = batch["noise"] - actions
    else:
        t = jnp.zeros_like(batch["time"])
        x_t = jnp.zeros_like(actions)
        target = actions
    pred = model.apply({"params": params}, batch["images"], batch["state"], batch["tokens"], x_t, t)
    err = ((pred - target) ** 2).mean(-1)
    weight = batch["weight"] / jnp.max(batch["weight"])
    mask = mask * weight[:, None]
    # the largest-weight sample has weight 1 and at least one unpadded action: mask.sum() >= 1
    return (err * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def sample_actions(
    model: ActionPolicy,
    params,
    images,
    state,
    tokens,
    reference_tokens,
    noise,
    guidance_scale: float,
    steps: int,
) -> jax.Array:
    """Normalised action chunks (B, H, Da).

    Flow: Euler-integrate dx/dt = v from x_1 = noise (t = 1) to t = 0 in ``steps`` steps.
    With ``guidance_scale`` w != 1 (classifier-free guidance), v = v_ref + w (v - v_ref),
    v_ref the prediction for ``reference_tokens`` (the reference prompt,
    :meth:`Policy.reference_prompt`); the same mix applies to the mse head's chunk.
    """
    guided = guidance_scale != 1.0
    b = state.shape[0]

    def predict(x, t):
        if not guided:
            return model.apply({"params": params}, images, state, tokens, x, t)
        both = model.apply(
            {"params": params},
            jnp.concatenate([images, images]),
            jnp.concatenate([state, state]),
            jnp.concatenate([tokens, reference_tokens]),
            jnp.concatenate([x, x]),
            jnp.concatenate([t, t]),
        )
        cond, reference = both[:b], both[b:]
        return reference + guidance_scale * (cond - reference)

    if model.config.head == "mse":
        return predict(jnp.zeros_like(noise), jnp.zeros((b,), noise.dtype))
    dt = 1.0 / steps

    def body(i, x):
        t = jnp.full((b,), 1.0 - i * dt, noise.dtype)
        return x - dt * predict(x, t)

    return jax.lax.fori_loop(0, steps, body, noise)
