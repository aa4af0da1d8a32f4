"""The raw PyAV decode loop every benchmark compares against (nothing else: open,
decode every frame, convert to an RGB ndarray)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av


def raw_pyav(paths: Iterable[Path]) -> int:
    """Decode every frame of every file; returns the number of frames."""
    n = 0
    for path in paths:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frame.to_ndarray(format="rgb24")
                n += 1
    return n
