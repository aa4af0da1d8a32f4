"""The project's prompt tokenizer: hashed words, fixed vocabulary, works offline on any text.

Words (runs of letters/digits) and single punctuation marks are lower-cased and hashed
with CRC-32 into ``vocab_size - 1`` buckets (id 0 is padding). Unseen words therefore
always map to some id; the hash is stable across processes and machines.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import TokenizerConfig

_TOKEN_RE = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
PAD_ID = 0


@dataclass(frozen=True)
class HashTokenizer:
    """Text -> (max_len,) int32 ids and (max_len,) bool mask."""

    config: TokenizerConfig = TokenizerConfig()

    def words(self, text: str) -> list[str]:
        return _TOKEN_RE.findall(text.lower())

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One prompt: ids int32 (max_len,), mask bool (max_len,); longer texts are truncated."""
        ids = [1 + zlib.crc32(w.encode()) % (self.config.vocab_size - 1) for w in self.words(text)][
            : self.config.max_len
        ]
        out = np.full(self.config.max_len, PAD_ID, dtype=np.int32)
        out[: len(ids)] = ids
        return out, out != PAD_ID

    def encode_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Prompts: ids int32 (B, max_len), mask bool (B, max_len). Encodes each distinct
        text once."""
        unique = {t: self.encode(t) for t in dict.fromkeys(texts)}
        if not texts:
            return np.zeros((0, self.config.max_len), np.int32), np.zeros(
                (0, self.config.max_len), bool
            )
        ids = np.stack([unique[t][0] for t in texts])
        return ids, ids != PAD_ID
