"""Write retrieval/places_zh.txt: the place names `retrieval.scope` uses, taken from jieba's dictionary.

    .venv/bin/python scripts/make_gazetteer.py

Run it after upgrading jieba (tests/test_years.py checks the shipped file against jieba's dictionary).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.scope import GAZETTEER_FILE, places_from_jieba  # noqa: E402


def main() -> None:
    names = sorted(places_from_jieba())
    GAZETTEER_FILE.write_text("\n".join(names) + "\n", encoding="utf-8")
    print(f"{len(names)} place names → {GAZETTEER_FILE}")


if __name__ == "__main__":
    main()
