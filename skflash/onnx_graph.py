"""Export a fitted estimator as one ONNX graph: preprocessing, network and outputs.

The graph takes the numeric columns as one float32 tensor ``numeric`` (in the training
order of the numeric columns; NaN for a missing number, filled and flagged in the graph)
and, when the model has categorical columns, each of them as a string tensor of shape
(n, 1) named after its column, holding ``str(value)`` (whole floats as integers: ``"2"``
for 2.0; bools as ``"True"``/``"False"``); a ``LabelEncoder`` node turns the strings into
the learned codes (unseen or missing: the reserved code). Then come the learned scaling,
the network, and the outputs: ``predictions`` for a regressor (in the target's units);
``probabilities`` and ``labels`` for a classifier (the class labels: strings, bools and
int64 integers as ``predict`` gives them, float labels as float32). The batch dimension
is dynamic. Needs the ``onnx`` extra (``onnx``, ``onnxscript``).

The graph computes in float32 whatever the model's precision. A half-precision model
(``"bf16-true"``, ``"16-true"``) predicts with its inputs, activations and outputs
rounded to bfloat16 / float16; the graph uses the same weights without those roundings,
so the two differ by them (a few units of the half format's rounding), not by float32's.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import tempfile
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from skflash.data.categories import UNKNOWN
from skflash.data.levels import network_inputs

#: Opset of the ``ai.onnx.ml`` domain used for LabelEncoder (string keys, integer values).
ML_OPSET = 2


def onnx_category_key(value: Any) -> str:
    """The string a categorical value is fed to the graph as: ``str(value)``, with whole
    floats written as integers (``2.0`` as ``"2"``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _require_onnx() -> Any:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError as error:
        raise ImportError(
            "to_onnx needs the onnx and onnxscript packages: pip install 'skflash[onnx]'."
        ) from error
    return onnx


class _ExportedModel(nn.Module):
    """The fitted Task's predict path as one float32 module: scale, network, outputs
    (half-precision weights widened exactly, so only predict's roundings are left out)."""

    def __init__(self, estimator: Any) -> None:
        super().__init__()
        task = estimator.task_
        preprocess = task.preprocess
        self.network = copy.deepcopy(task.model).float().eval()
        width = preprocess.num_inputs
        mean = np.zeros(width) if preprocess.x_mean is None else preprocess.x_mean
        scale = np.ones(width) if preprocess.x_scale is None else preprocess.x_scale
        with np.errstate(divide="ignore", over="ignore"):
            factor = 1.0 / np.asarray(scale, dtype=np.float64)
        factor[~np.isfinite(factor)] = 1.0
        self.register_buffer("shift", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("factor", torch.as_tensor(factor, dtype=torch.float32))
        self.clip_columns = width - preprocess.num_codes
        self.register_buffer("indicators", torch.tensor(preprocess.indicators, dtype=torch.long))
        columns, thresholds = preprocess.levels
        self.register_buffer("level_columns", torch.tensor(columns, dtype=torch.long))
        self.register_buffer("thresholds", torch.tensor(thresholds, dtype=torch.float32))
        self.robust = preprocess.standardize_inputs == "robust"
        self.kind = estimator._target.onnx_kind
        post = task.postprocess
        y_mean = getattr(post, "y_mean", None)
        y_scale = getattr(post, "y_scale", None)
        self.register_buffer(
            "y_mean", torch.zeros(1) if y_mean is None else y_mean.float().reshape(-1)
        )
        self.register_buffer(
            "y_scale", torch.ones(1) if y_scale is None else y_scale.float().reshape(-1)
        )

    def forward(self, x: torch.Tensor) -> Any:
        levels = (self.level_columns, self.thresholds) if self.thresholds.numel() else None
        scaled = (x - self.shift) * self.factor
        x = network_inputs(x, scaled, self.clip_columns, self.robust, self.indicators, levels)
        out = self.network(x)
        if self.kind == "regression":
            return out * self.y_scale + self.y_mean
        if self.kind == "multiclass":
            probabilities = torch.softmax(out, dim=-1)
            return probabilities, probabilities.argmax(dim=-1)
        positive = torch.sigmoid(out)
        if self.kind == "binary":
            probabilities = torch.cat([1 - positive, positive], dim=-1)
            return probabilities, (positive[:, 0] > 0.5).long()
        return positive, (positive > 0.5).long()  # multi-label


def _export_network(module: nn.Module, width: int, opset: int | None) -> Any:
    """Export ``module`` with one input ``encoded`` (batch, width), quietly."""
    onnx = _require_onnx()
    outputs = ["predictions"] if module.kind == "regression" else ["probabilities", "labels"]
    sample = torch.zeros(2, width)
    quiet = io.StringIO()
    exporter = logging.getLogger("torch.onnx")
    level = exporter.level
    exporter.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(quiet), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (sample,),
                dynamo=True,
                input_names=["encoded"],
                output_names=outputs,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
                **({} if opset is None else {"opset_version": opset}),
            )
    finally:
        exporter.setLevel(level)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "network.onnx")
        program.save(path)
        return onnx.load(path)


def _with_category_inputs(model: Any, estimator: Any) -> Any:
    """Replace the ``encoded`` input by ``numeric`` plus one string input per categorical
    column, encoded in the graph by LabelEncoder nodes."""
    import onnx
    from onnx import TensorProto, helper

    categories = estimator._table.categories
    graph = model.graph
    taken = {"numeric", "encoded"} & {str(n) for n in getattr(estimator, "feature_names_in_", [])}
    if taken:
        raise ValueError(
            f"Column(s) {sorted(taken)} have names the ONNX graph uses for its own tensors; "
            "rename them before fitting to export this model."
        )
    encoded = next(i for i in graph.input if i.name == "encoded")
    graph.input.remove(encoded)
    names = (
        [str(c) for c in estimator.feature_names_in_]
        if hasattr(estimator, "feature_names_in_")
        else [f"x{i}" for i in range(estimator.n_features_in_)]
    )
    numeric_count = estimator.n_features_in_ - len(categories.columns)
    inputs = [helper.make_tensor_value_info("numeric", TensorProto.FLOAT, ["batch", numeric_count])]
    nodes, parts = [], ["numeric"]
    for position, known, codes in categories.code_tables():
        name = names[position]
        inputs.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["batch", 1]))
        nodes.append(
            helper.make_node(
                "LabelEncoder",
                [name],
                [f"{name}__code"],
                domain="ai.onnx.ml",
                keys_strings=[onnx_category_key(v) for v in known],
                values_int64s=codes,
                default_int64=UNKNOWN,
            )
        )
        nodes.append(
            helper.make_node("Cast", [f"{name}__code"], [f"{name}__float"], to=TensorProto.FLOAT)
        )
        parts.append(f"{name}__float")
    nodes.append(helper.make_node("Concat", parts, ["encoded"], axis=1))
    graph.input.extend(inputs)
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    if not any(o.domain == "ai.onnx.ml" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    onnx.checker.check_model(model)
    return model


def _with_label_values(model: Any, classes: np.ndarray) -> Any:
    """Map the class indices of ``labels`` to the class labels, when ONNX can hold them."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    output = next(o for o in graph.output if o.name == "labels")
    for node in graph.node:
        node.output[:] = ["labels__index" if o == "labels" else o for o in node.output]
    if classes.dtype.kind == "b":  # predict gives bools: so does the graph
        table = numpy_helper.from_array(classes.astype(bool), name="labels__table")
        elem = TensorProto.BOOL
    elif classes.dtype.kind in "iu":
        table = numpy_helper.from_array(classes.astype(np.int64), name="labels__table")
        elem = TensorProto.INT64
    elif classes.dtype.kind == "f":
        table = numpy_helper.from_array(classes.astype(np.float32), name="labels__table")
        elem = TensorProto.FLOAT
    else:  # strings
        graph.node.append(
            helper.make_node(
                "LabelEncoder",
                ["labels__index"],
                ["labels"],
                domain="ai.onnx.ml",
                keys_int64s=list(range(len(classes))),
                values_strings=[str(c) for c in classes],
                default_string="",
            )
        )
        if not any(o.domain == "ai.onnx.ml" for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
        graph.output.remove(output)
        graph.output.append(helper.make_tensor_value_info("labels", TensorProto.STRING, ["batch"]))
        return model
    graph.initializer.append(table)
    graph.node.append(helper.make_node("Gather", ["labels__table", "labels__index"], ["labels"]))
    graph.output.remove(output)
    graph.output.append(helper.make_tensor_value_info("labels", elem, ["batch"]))
    return model


def onnx_model(estimator: Any, opset: int | None = None) -> Any:
    """``estimator`` (fitted) as one ONNX ``ModelProto``; ``opset``: the default ONNX
    domain's version (the exporter's own choice if None)."""
    onnx = _require_onnx()
    module = _ExportedModel(estimator)
    model = _export_network(module, estimator.task_.preprocess.num_inputs, opset)
    if module.kind in ("multiclass", "binary"):
        model = _with_label_values(model, np.asarray(estimator.classes_))
    if estimator._table.categories is not None:
        model = _with_category_inputs(model, estimator)
    else:
        model.graph.input[0].name = "numeric"
        for node in model.graph.node:
            node.input[:] = ["numeric" if i == "encoded" else i for i in node.input]
    onnx.checker.check_model(model)
    return model


def export_onnx(estimator: Any, path: str | os.PathLike) -> str:
    """Write ``estimator`` (fitted) to ``path`` as one ONNX graph; return the path."""
    model = onnx_model(estimator)
    path = os.fspath(path)
    _require_onnx().save(model, path)
    return path
