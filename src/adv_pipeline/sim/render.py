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


def _fill_disc(
    img: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    cx: float,
    cy: float,
    r: float,
    ppm: float,
    color: tuple[float, float, float],
) -> None:
    """Composite an anti-aliased disc into float image ``img`` (H, W, 3) in place.

    ``xs`` (W,) / ``ys`` (H,) are pixel-centre world coordinates (m)."""
    d = np.sqrt((xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2) - r
    a = np.clip(0.5 - d * ppm, 0.0, 1.0)[..., None]
    img += a * (np.asarray(color) - img)


def _background(
    config: DemoTaskConfig, gx: float, gy: float, ppm: float, x0: float, n: int
) -> np.ndarray:
    """Static scene (table, zones) as uint8 (n, n, 3) covering world
    [x0, x0 + n / ppm]^2 at ``ppm`` pixels per metre."""
    c = x0 + (np.arange(n) + 0.5) / ppm
    img = np.empty((n, n, 3), dtype=np.float64)
    img[:] = OUTSIDE
    inside_x = np.clip(0.5 + (0.5 - np.abs(c - 0.5)) * ppm, 0.0, 1.0)
    a = (inside_x[:, None] * inside_x[None, :])[..., None]
    img += a * (np.asarray(TABLE) - img)
    ring = max(0.006, 1.5 / ppm)
    _fill_disc(
        img, c, c, config.handover_x, config.handover_y, config.handover_radius, ppm, HANDOVER_RING
    )
    _fill_disc(
        img,
        c,
        c,
        config.handover_x,
        config.handover_y,
        config.handover_radius - ring,
        ppm,
        HANDOVER,
    )
    _fill_disc(img, c, c, gx, gy, config.goal_radius, ppm, GOAL_RING)
    _fill_disc(img, c, c, gx, gy, config.goal_radius - ring, ppm, GOAL)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


_CACHE: OrderedDict = OrderedDict()
# bounded in bytes, not entries: a closed-loop evaluation renders 100+ episodes in lock
# step, each with its own goal, and an LRU smaller than that re-renders every frame
_CACHE_BYTES = 256 * 2**20


def _backgrounds(
    config: DemoTaskConfig, gx: float, gy: float
) -> tuple[np.ndarray, np.ndarray, float, float, float]:
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
    used = sum(v[0].nbytes + v[1].nbytes for v in _CACHE.values())
    while used > _CACHE_BYTES and len(_CACHE) > 1:
        _, (old_top, old_wrist, *_) = _CACHE.popitem(last=False)
        used -= old_top.nbytes + old_wrist.nbytes
    return hit


_COLORS = np.array([LEFT_ARM, LEFT, LEFT, LEFT, RIGHT_ARM, RIGHT, RIGHT, RIGHT, BLOCK])
"""RGB of the dynamic boxes in draw order (9, 3); the block is drawn last."""


def _boxes(s: np.ndarray, config: DemoTaskConfig) -> np.ndarray:
    """Dynamic scene as axis-aligned boxes, float64 (9, 4) rows (cx, cy, hx, hy) in m,
    in draw order: per arm (left, right) arm / palm / finger / finger, then the block."""
    bh = config.block_half
    flen = 2.0 * bh + _PALM_HALF_W + 0.01  # fingers span the whole block (m)
    rows = []
    for gx, gy, go, sign, edge in (
        (s[LX], s[LY], s[LO], 1.0, -0.3),
        (s[RX], s[RY], s[RO], -1.0, 1.3),
    ):
        off = bh + 0.003 + 0.05 * max(go - 0.1, 0.0) + _FINGER_HALF  # finger centre |dy| (m)
        palm_x = gx - sign * (bh + _PALM_HALF_W)
        fx = palm_x + sign * 0.5 * flen
        rows += [
            (0.5 * (palm_x + edge), gy, 0.5 * abs(palm_x - edge), _ARM_HALF),
            (palm_x, gy, _PALM_HALF_W, off + _FINGER_HALF),
            (fx, gy - off, 0.5 * flen, _FINGER_HALF),
            (fx, gy + off, 0.5 * flen, _FINGER_HALF),
        ]
    rows.append((s[BX], s[BY], bh, bh))
    return np.array(rows)


_CENTERS: dict[int, np.ndarray] = {}


def _draw_boxes(
    imgs: list[np.ndarray], origins: np.ndarray, ppms: np.ndarray, boxes: np.ndarray
) -> None:
    """Composite ``boxes`` (nb, 4) into each uint8 (n, n, 3) image in place.

    Camera c has its top-left corner at world ``origins[c]`` (m, (x, y)) and
    ``ppms[c]`` pixels per metre.  Exact box coverage is separable: the x and
    y coverages of every box in every camera are computed in one shot, shape
    (C, nb, n), and only each box's pixel bounding box is blended.
    """
    n = imgs[0].shape[0]
    cen = _CENTERS.get(n)
    if cen is None:
        cen = _CENTERS.setdefault(n, np.arange(n) + 0.5)
    ppm = ppms[:, None, None]
    half = boxes[None, :, 2:4] + 0.5 / ppms[:, None, None]  # (C, nb, 2)
    lo = (boxes[None, :, 0:2] - half - origins[:, None, :]) * ppm  # pixel bounds (C, nb, 2)
    hi = (boxes[None, :, 0:2] + half - origins[:, None, :]) * ppm
    wx = cen[None, None, :] / ppm + (origins[:, None, 0:1] - boxes[None, :, 0:1])  # (C, nb, n)
    wy = cen[None, None, :] / ppm + (origins[:, None, 1:2] - boxes[None, :, 1:2])
    cx = np.clip((half[..., 0:1] - np.abs(wx)) * ppm, 0.0, 1.0)
    cy = np.clip((half[..., 1:2] - np.abs(wy)) * ppm, 0.0, 1.0)
    lo_i = np.clip(np.floor(lo), 0, n).astype(np.int64).tolist()
    hi_i = np.clip(np.ceil(hi), 0, n).astype(np.int64).tolist()
    for c, img in enumerate(imgs):
        for b in range(len(boxes)):
            (i0, j0), (i1, j1) = lo_i[c][b], hi_i[c][b]
            if i0 >= i1 or j0 >= j1:
                continue
            a = np.multiply.outer(cy[c, b, j0:j1], cx[c, b, i0:i1])[..., None]
            reg = img[j0:j1, i0:i1]
            tmp = _COLORS[b] - reg
            tmp *= a
            tmp += 0.5
            np.add(reg, tmp, out=reg, casting="unsafe")


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
    big = wrist_bg.shape[0]
    imgs = [top_bg.copy()]
    origins = [(0.0, 0.0)]
    for gx, gy in ((s[LX], s[LY]), (s[RX], s[RY])):
        i = min(max(int(round((gx - w0) * wppm - 0.5 * n)), 0), big - n)
        j = min(max(int(round((gy - w0) * wppm - 0.5 * n)), 0), big - n)
        imgs.append(wrist_bg[j : j + n, i : i + n].copy())
        origins.append((w0 + i / wppm, w0 + j / wppm))
    _draw_boxes(imgs, np.array(origins), np.array([top_ppm, wppm, wppm]), _boxes(s, config))
    return dict(zip(CAMERA_KEYS, imgs))
