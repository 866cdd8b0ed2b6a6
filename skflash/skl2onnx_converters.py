"""FlashRegressor and FlashClassifier as steps skl2onnx can convert.

``skl2onnx.to_onnx(pipeline, X[:1])`` exports a scikit-learn Pipeline whose last step is a
skflash estimator: the estimator's own graph (:func:`~skflash.onnx_graph.onnx_model`:
scaling, network, outputs) is placed after the other steps' nodes, and the outputs are
skl2onnx's (``variable`` for a regressor; ``output_label`` and ``output_probability``,
a ZipMap unless ``options={id(clf): {"zipmap": False}}``, for a classifier). Labels are
typed as skl2onnx types those of scikit-learn's own classifiers: strings, or int64 (bool
and float labels included, so ``True`` comes out as 1).

skl2onnx knows the converters as soon as both packages are imported, in either order:
importing skflash registers them at once when skl2onnx is already imported, and
otherwise when skl2onnx is (skl2onnx takes seconds to import, so skflash never imports it
itself). :func:`register_converters` is the same registration, callable directly.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import warnings
from typing import Any

#: The default ONNX domain's opset the network is exported at, unless the conversion's
#: target opset is lower; the exporter needs at least the minimum.
NETWORK_OPSET = 20
MINIMUM_OPSET = 18

_registered = False
_lock = threading.Lock()


def _skflash_input_type(operator: Any) -> Any:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    kind = type(operator.inputs[0].type)
    if kind not in (FloatTensorType, DoubleTensorType):
        raise TypeError(
            f"{type(operator.raw_operator).__name__} takes float or double tensors in an ONNX "
            f"pipeline, not {kind.__name__}; convert the input to numbers first."
        )
    return kind


def _check_exportable(estimator: Any) -> None:
    name = type(estimator).__name__
    if estimator._table.categories is not None:
        raise ValueError(
            f"This {name} encodes categorical columns itself, which an skl2onnx pipeline "
            "cannot feed it (its input is one numeric tensor). Encode them in an earlier "
            "step (e.g. OneHotEncoder in a ColumnTransformer), or export the estimator "
            "alone with its to_onnx(path)."
        )
    if estimator._target.onnx_kind == "multilabel":
        raise ValueError(f"A multi-label {name} cannot be converted by skl2onnx's classifiers.")


def _regressor_shape(operator: Any) -> None:
    kind = _skflash_input_type(operator)
    _check_exportable(operator.raw_operator)
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = kind([rows, operator.raw_operator.n_outputs_])


def _classifier_shape(operator: Any) -> None:
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    _skflash_input_type(operator)
    _check_exportable(operator.raw_operator)
    calculate_linear_classifier_output_shapes(operator)  # labels as int64 or strings


def _convert(scope: Any, operator: Any, container: Any) -> None:
    """Place the estimator's graph in the conversion, between the operator's input and
    outputs (cast to and from float32 when the pipeline computes in double)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx.common.data_types import DoubleTensorType

    from skflash.onnx_graph import onnx_model

    target = container.target_opset
    if target is not None and target < MINIMUM_OPSET:
        raise ValueError(f"A skflash network needs target_opset >= {MINIMUM_OPSET}; got {target}.")
    model = onnx_model(operator.raw_operator, min(NETWORK_OPSET, target or NETWORK_OPSET))
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    versions = {o.domain: o.version for o in model.opset_import}
    names: dict[str, str] = {"": ""}

    def renamed(name: str) -> str:
        if name not in names:
            names[name] = scope.get_unique_variable_name(f"flash_{name}")
        return names[name]

    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    if double and len(operator.outputs) == 2:
        zipmap = container.get_options(operator.raw_operator, {"zipmap": True})["zipmap"]
        if zipmap is True:  # ONNX's ZipMap reads float probabilities only
            raise ValueError(
                "A classifier pipeline converted with double input gives double "
                "probabilities, which ONNX's ZipMap cannot take (scikit-learn's own "
                "classifiers alike). Pass options={id(clf): {'zipmap': False}} for a "
                "probability tensor, or convert with float32 input (X[:1].astype('float32'))."
            )
    source = operator.inputs[0].full_name
    if double:
        container.add_node("Cast", [source], [renamed("numeric")], to=TensorProto.FLOAT)
    else:
        names["numeric"] = source
    for tensor in model.graph.initializer:
        values = numpy_helper.to_array(tensor)
        container.add_initializer(
            renamed(tensor.name), tensor.data_type, list(values.shape), values.ravel()
        )
    for node in model.graph.node:
        schema = onnx.defs.get_schema(node.op_type, versions[node.domain], node.domain)
        container.add_node(
            node.op_type,
            [renamed(i) for i in node.input],
            [renamed(o) for o in node.output],
            op_domain=node.domain,
            op_version=schema.since_version,
            name=scope.get_unique_operator_name(f"Flash{node.op_type}"),
            **{a.name: helper.get_attribute_value(a) for a in node.attribute},
        )
    produced = ["predictions"] if len(operator.outputs) == 1 else ["labels", "probabilities"]
    for name, output in zip(produced, operator.outputs, strict=True):
        wanted = output.type.to_onnx_type().tensor_type.elem_type
        if name == "labels" and wanted == TensorProto.STRING:
            container.add_node("Identity", [renamed(name)], [output.full_name])
        elif name == "labels" or double:
            container.add_node("Cast", [renamed(name)], [output.full_name], to=wanted)
        else:
            container.add_node("Identity", [renamed(name)], [output.full_name])


def register_converters() -> None:
    """Tell skl2onnx how to convert FlashRegressor and FlashClassifier (done by itself
    once both packages are imported; calling it again does nothing)."""
    global _registered
    with _lock:
        if _registered:
            return
        from skl2onnx import update_registered_converter

        from skflash.estimators.classifier import FlashClassifier
        from skflash.estimators.regressor import FlashRegressor

        update_registered_converter(
            FlashRegressor, "SkflashFlashRegressor", _regressor_shape, _convert
        )
        update_registered_converter(
            FlashClassifier,
            "SkflashFlashClassifier",
            _classifier_shape,
            _convert,
            options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
        )
        _registered = True


class _Loader(importlib.abc.Loader):
    """skl2onnx's own loader, then the registration."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # resources, reloads
        self.loader.exec_module(module)
        try:
            register_converters()
        except Exception as error:  # skl2onnx itself must import whatever happens here
            warnings.warn(
                f"skflash could not register its skl2onnx converters: {error!r}", stacklevel=2
            )


class _WhenImported(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of ``skl2onnx`` so that importing it
    registers the converters."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "skl2onnx":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Register now if skl2onnx is imported, else when it is (called by ``import skflash``)."""
    if "skl2onnx" in sys.modules:
        register_converters()
    elif not any(isinstance(f, _WhenImported) for f in sys.meta_path):
        sys.meta_path.insert(0, _WhenImported())
