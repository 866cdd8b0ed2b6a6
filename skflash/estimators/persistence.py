"""What a fitted estimator pickles: plain values and numpy arrays, no torch objects.

The network is rebuilt from the fit's parameters when the state is loaded, so a pickle
(or a ``skops`` file) holds no torch pickles and trusts no type but the estimator's own,
and a model trained on a GPU loads on a machine without one. States written by 0.2
(which kept the category codes, the target's shape and the parameter count under other
names) load too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightning_utilities.core.apply_func import apply_to_collection

from skflash.core.model import Task
from skflash.data.categories import CategoryCodes
from skflash.data.numpy_data import NumpyPreprocess
from skflash.data.tables import TableEncoder
from skflash.data.targets import ClassIndices, ClassLabels, RegressionTargets
from skflash.estimators import serving
from skflash.estimators.assembly import seeded_task, trainable_count
from skflash.estimators.routing import is_routed


def as_array(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as a numpy array on the CPU; bfloat16, which numpy lacks, as float32 (the
    model's dtype is restored when it loads)."""
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def _plain_setting(setting: Any) -> Any:
    return setting if setting is None or isinstance(setting, str) else list(setting)


def saved_state(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of an estimator's ``__dict__`` as plain values."""
    state = dict(state)
    task = state.pop("task_", None)
    table = state.pop("_table", None)
    target = state.pop("_target", None)
    state = apply_to_collection(state, torch.Tensor, as_array)
    if isinstance(table, TableEncoder):
        categories = table.categories
        state["_table"] = {
            "categories": None if categories is None else categories.state_dict(),
            "setting": _plain_setting(table.setting),
            "owner": table.owner,
            "missing": list(table.missing),
            "levels": [list(table.levels[0]), list(table.levels[1])],
        }
    if isinstance(target, RegressionTargets):
        state["_target"] = {
            "kind": "regression",
            "one_dimensional": target.one_dimensional,
            "n_outputs": target.n_outputs,
        }
    elif isinstance(target, ClassLabels):
        state["_target"] = {
            "kind": "indices" if isinstance(target, ClassIndices) else "labels",
            "classes": target.classes,
            "multi_label": target.multi_label,
        }
    if task is not None:  # a Task of either Lightning namespace
        state["task_"] = {
            "weights": {k: as_array(v) for k, v in task.state_dict().items()},
            "dtype": str(task.dtype).removeprefix("torch."),
            "preprocess": task.preprocess.state_dict(),
            "postprocess": task.postprocess.state_dict(),
        }
    return state


def _from_0_2(state: dict[str, Any], owner: str) -> None:
    """The names 0.2 kept its fitted helpers under, as the helpers."""
    if "_categories" in state:
        state["_table"] = TableEncoder(
            state.pop("_categories"), state.get("categorical_features"), owner
        )
    if "_y_1d" in state:
        state["_target"] = RegressionTargets(state.pop("_y_1d"), state["n_outputs_"])
    if "_multi_label" in state:
        state["_target"] = ClassLabels(state["classes_"], state.pop("_multi_label"))
    if "_weights" in state:
        state["_n_trainable"] = state.pop("_weights")
    state.pop("_unknown_params", None)  # misspelled keywords are refused at construction


def _helpers(state: dict[str, Any]) -> None:
    table = state.get("_table")
    if isinstance(table, dict):
        categories = table["categories"]
        state["_table"] = TableEncoder(
            None if categories is None else CategoryCodes.from_state_dict(categories),
            table["setting"],
            table["owner"],
            table.get("missing", ()),
            table.get("levels", ((), ())),
        )
    target = state.get("_target")
    if isinstance(target, dict):
        if target["kind"] == "regression":
            state["_target"] = RegressionTargets(target["one_dimensional"], target["n_outputs"])
        else:
            kind = ClassIndices if target["kind"] == "indices" else ClassLabels
            state["_target"] = kind(np.asarray(target["classes"]), target["multi_label"])
    if state.get("_optimizer_state") is not None:
        state["_optimizer_state"] = apply_to_collection(
            state["_optimizer_state"], np.ndarray, torch.from_numpy
        )


def load_state(estimator: Any, state: dict[str, Any]) -> dict[str, Any]:
    """The live state of ``estimator`` from a saved one (this version's or 0.2's): the
    fitted helpers rebuilt, and the Task rebuilt around its saved weights."""
    state = dict(state)
    state.setdefault("task", None)  # saved before task= existed
    state.setdefault("discrete_features", "auto")  # saved before discrete_features existed
    routed = {k: state.pop(k) for k in list(state) if is_routed(k)}  # once kept as attributes
    if routed:
        state["_routed"] = {**routed, **state.get("_routed", {})}
    _from_0_2(state, type(estimator).__name__)
    _helpers(state)
    saved = state.get("task_")
    if isinstance(saved, dict):
        state["task_"] = rebuilt_task(estimator, state, saved)
        own = serving.own_network(state.get("backbone"), state.get("task"))
        serving.reset(state["task_"], own)
    if "task_" in state and state.get("_n_trainable") is None:
        state["_n_trainable"] = trainable_count(state["task_"])
    return state


def rebuilt_task(estimator: Any, state: dict[str, Any], saved: dict[str, Any]) -> Task:
    """The fitted Task, from the fit's parameters and the saved weights."""
    params = state["_network_params"]
    table, target = state["_table"], state["_target"]

    def build() -> Task:
        return estimator._built_task(
            params, params["n_inputs"], target, table.categories, params["epochs"]
        )

    task = seeded_task(build, None)
    task.preprocess = NumpyPreprocess()
    task.preprocess.load_state_dict(saved["preprocess"])
    task.preprocess.categories = table.categories
    task.postprocess.load_state_dict(saved["postprocess"])
    task.to(getattr(torch, saved["dtype"]))
    task.load_state_dict({k: torch.from_numpy(v) for k, v in saved["weights"].items()})
    task.eval()  # a fitted model predicts; fit puts it back in training mode
    return task
