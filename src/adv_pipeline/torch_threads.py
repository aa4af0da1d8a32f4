"""torch's intra-op thread count, set by every stage that runs torch: the number its
config gives, or else the count torch chose when this module was first imported, so that
a stage's results do not depend on what ran before it in the same process (``kedro
sweep`` runs its seeds in one process; a thread count changes float sums in the last
bits)."""

from __future__ import annotations

import torch

_DEFAULT = torch.get_num_threads()


def use_torch_threads(threads: int) -> None:
    """Set torch's intra-op threads: ``threads`` if > 0, else torch's own default."""
    torch.set_num_threads(threads if threads > 0 else _DEFAULT)
