"""reportqa retrieval core: corpus → parse → index → retrieve.

Importing this package is cheap (no torch, no faiss); heavy modules load on first use so that a
cold `reportqa ask` only pays for what it needs.
"""
