"""Numpy-only renderer: a pure function of a sim snapshot.

Three square uint8 cameras (``CAMERA_KEYS``):

* ``top_head``: the whole 1 m x 1 m table.
* ``hand_left`` / ``hand_right``: a ``wrist_fov`` x ``wrist_fov`` patch of
  the table centred on that gripper's grasp point (the gripper always sits in
  the image centre; the block shows up between its fingers when held).

Static content (table, hand-over zone, goal zone) is rendered once per goal
position into cached backgrounds.  Dynamic content (block, fingers, palms,
arms) is made of axis-aligned boxes whose exact pixel coverage is separable
(alpha = coverage_x (W,) outer coverage_y (H,)), composited only inside each
box's pixel bounding box, which keeps rendering far below 1 ms per frame.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .config import CAMERA_KEYS, DemoTaskConfig
from .state import BX, BY, GX, GY, LO, LX, LY, RO, RX, RY

TABLE = (205.0, 195.0, 172.0)
OUTSIDE = (62.0, 62.0, 68.0)
HANDOVER = (140.0, 178.0, 228.0)
HANDOVER_RING = (60.0, 100.0, 180.0)
GOAL = (120.0, 205.0, 110.0)
GOAL_RING = (30.0, 130.0, 40.0)
BLOCK = (215.0, 30.0, 35.0)
LEFT = (35.0, 85.0, 235.0)
LEFT_ARM = (20.0, 40.0, 120.0)
RIGHT = (250.0, 150.0, 15.0)
RIGHT_ARM = (140.0, 75.0, 10.0)

_FINGER_HALF = 0.009  # finger half thickness (m)
_PALM_HALF_W = 0.012  # palm half width along x (m)
_ARM_HALF = 0.014  # arm half thickness (m)


def _fill_disc(img: np.ndarray, xs: np.ndarray, ys: np.ndarray, cx: float, cy: float,
               r: float, ppm: float, color: tuple[float, float, float]) -> None:
    """Composite an anti-aliased disc into float image ``img`` (H, W, 3) in place.

    ``xs`` (W,) / ``ys`` (H,) are pixel-centre world coordinates (m)."""
    d = np.sqrt((xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2) - r
    a = np.clip(0.5 - d * ppm, 0.0, 1.0)[..., None]
    img += a * (np.asarray(color) - img)


def _background(config: DemoTaskConfig, gx: float, gy: float, ppm: float,
                x0: float, n: int) -> np.ndarray:
    """Static scene (table, zones) as uint8 (n, n, 3) covering world
    [x0, x0 + n / ppm]^2 at ``ppm`` pixels per metre."""
    c = x0 + (np.arange(n) + 0.5) / ppm
    img = np.empty((n, n, 3), dtype=np.float64)
    img[:] = OUTSIDE
    inside_x = np.clip(0.5 + (0.5 - np.abs(c - 0.5)) * ppm, 0.0, 1.0)
    a = (inside_x[:, None] * inside_x[None, :])[..., None]
    img += a * (np.asarray(TABLE) - img)
    ring = max(0.006, 1.5 / ppm)
    _fill_disc(img, c, c, config.handover_x, config.handover_y, config.handover_radius, ppm, HANDOVER_RING)
    _fill_disc(img, c, c, config.handover_x, config.handover_y, config.handover_radius - ring, ppm, HANDOVER)
    _fill_disc(img, c, c, gx, gy, config.goal_radius, ppm, GOAL_RING)
    _fill_disc(img, c, c, gx, gy, config.goal_radius - ring, ppm, GOAL)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 64


def _backgrounds(config: DemoTaskConfig, gx: float, gy: float) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Cached (top_bg, wrist_bg, top_ppm, wrist_ppm, wrist_bg_origin) for a goal."""
    key = (config, round(float(gx), 9), round(float(gy), 9))
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    n = config.image_size
    top_ppm = float(n)
    wrist_ppm = n / config.wrist_fov
    pad = 0.5 * config.wrist_fov + 2.0 / wrist_ppm
    big = int(np.ceil((1.0 + 2 * pad) * wrist_ppm))
    top = _background(config, gx, gy, top_ppm, 0.0, n)
    wrist = _background(config, gx, gy, wrist_ppm, -pad, big)
    hit = (top, wrist, top_ppm, wrist_ppm, -pad)
    _CACHE[key] = hit
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return hit


def _boxes(s: np.ndarray, config: DemoTaskConfig) -> list[tuple[float, float, float, float, np.ndarray]]:
    """Dynamic scene as axis-aligned boxes (cx, cy, hx, hy, rgb) in draw order (m)."""
    boxes = []
    bh = config.block_half
    for side, (gx, gy, go, col, arm) in enumerate(((s[LX], s[LY], s[LO], LEFT, LEFT_ARM),
                                                   (s[RX], s[RY], s[RO], RIGHT, RIGHT_ARM))):
        sign = 1.0 if side == 0 else -1.0  # fingers point towards +x for the left arm
        off = bh + 0.003 + 0.05 * max(go - 0.1, 0.0) + _FINGER_HALF  # finger centre |dy| (m)
        palm_x = gx - sign * (bh + _PALM_HALF_W)
        edge = -0.3 if side == 0 else 1.3
        arm_cx, arm_hx = 0.5 * (palm_x + edge), 0.5 * abs(palm_x - edge)
        boxes.append((arm_cx, gy, arm_hx, _ARM_HALF, np.asarray(arm)))
        boxes.append((palm_x, gy, _PALM_HALF_W, off + _FINGER_HALF, np.asarray(col)))
        flen = 2.0 * bh + _PALM_HALF_W + 0.01  # fingers span the whole block (m)
        fx = palm_x + sign * 0.5 * flen
        boxes.append((fx, gy - off, 0.5 * flen, _FINGER_HALF, np.asarray(col)))
        boxes.append((fx, gy + off, 0.5 * flen, _FINGER_HALF, np.asarray(col)))
    boxes.append((s[BX], s[BY], bh, bh, np.asarray(BLOCK)))  # last: always visible
    return boxes


def _draw_boxes(img: np.ndarray, ox: float, oy: float, ppm: float,
                boxes: list[tuple[float, float, float, float, np.ndarray]]) -> None:
    """Composite boxes into uint8 ``img`` (n, n, 3) in place; the camera's
    top-left corner is at world (ox, oy) (m) and ``ppm`` is pixels per metre."""
    n = img.shape[0]
    for cx, cy, hx, hy, col in boxes:
        i0 = max(int(np.floor((cx - hx - ox) * ppm)), 0)
        i1 = min(int(np.ceil((cx + hx - ox) * ppm)) + 1, n)
        j0 = max(int(np.floor((cy - hy - oy) * ppm)), 0)
        j1 = min(int(np.ceil((cy + hy - oy) * ppm)) + 1, n)
        if i0 >= i1 or j0 >= j1:
            continue
        px = (np.arange(i0, i1) + 0.5) * (1.0 / ppm) + (ox - cx)
        py = (np.arange(j0, j1) + 0.5) * (1.0 / ppm) + (oy - cy)
        ax = np.clip(0.5 + (hx - np.abs(px)) * ppm, 0.0, 1.0)
        ay = np.clip(0.5 + (hy - np.abs(py)) * ppm, 0.0, 1.0)
        a = (ay[:, None] * ax[None, :])[..., None]
        reg = img[j0:j1, i0:i1]
        reg[...] = reg + a * (col - reg) + 0.5


def render(snapshot: np.ndarray, config: DemoTaskConfig) -> dict[str, np.ndarray]:
    """Render the three cameras for one snapshot.

    Args:
        snapshot: float64 (SNAPSHOT_DIM,) sim state.
        config: task config (image size, wrist field of view, zone sizes).

    Returns:
        ``{key: uint8 (image_size, image_size, 3)}`` for key in CAMERA_KEYS.
    """
    s = snapshot
    n = config.image_size
    top_bg, wrist_bg, top_ppm, wppm, w0 = _backgrounds(config, s[GX], s[GY])
    boxes = _boxes(s, config)
    out: dict[str, np.ndarray] = {}
    top = top_bg.copy()
    _draw_boxes(top, 0.0, 0.0, top_ppm, boxes)
    out[CAMERA_KEYS[0]] = top
    big = wrist_bg.shape[0]
    for key, gx, gy in ((CAMERA_KEYS[1], s[LX], s[LY]), (CAMERA_KEYS[2], s[RX], s[RY])):
        i = min(max(int(round((gx - w0) * wppm - 0.5 * n)), 0), big - n)
        j = min(max(int(round((gy - w0) * wppm - 0.5 * n)), 0), big - n)
        img = wrist_bg[j:j + n, i:i + n].copy()
        _draw_boxes(img, w0 + i / wppm, w0 + j / wppm, wppm, boxes)
        out[key] = img
    return out
