"""The pieces of a fit, built from its plan: the Task, its Preprocess, the DataModule.

The estimator says which Task it trains (:meth:`new_task` of each estimator); what every
Task gets from the estimator's parameters (backbone, optimizer, schedule, categorical
inputs, ensemble) is built here.
"""

from __future__ import annotations

import copy
import inspect
import os
import threading
from collections.abc import Callable
from typing import Any

import torch

from skflash.core.backbones import TABULAR_BACKBONES
from skflash.core.model import Task
from skflash.core.seeded_draws import SeededDraws
from skflash.core.tabular_input import InputLayout
from skflash.data.categories import CategoryCodes
from skflash.data.numpy_data import NumpyDataModule, NumpyPreprocess
from skflash.data.targets import ClassLabels
from skflash.data.training_rows import TrainingRows
from skflash.estimators import fit_plan, routing

#: Held while torch's global generator is seeded, read or restored by a fit, so that
#: threads cannot interleave a seeding and the draws that follow it.
SEEDING = threading.RLock()
# Free in a forked child: taken across the fork, so no other thread holds it then
# (re-entrant: a network of the user's may fork while it is built under the lock).
os.register_at_fork(
    before=SEEDING.acquire, after_in_parent=SEEDING.release, after_in_child=SEEDING.release
)


def backbone_argument(params: dict[str, Any], n_inputs: int, n_outputs: int) -> tuple[Any, dict]:
    """The ``backbone`` and ``backbone_kwargs`` arguments of a tabular Task.

    A registry name stays a name (the Task builds it with its head); a module class is
    built as ``cls(n_inputs, n_outputs, **backbone__)``; an instance is copied.
    """
    backbone, kwargs = params["backbone"], params["backbone_kwargs"]
    if isinstance(backbone, str):
        factory = TABULAR_BACKBONES.get(backbone)
        routing.check_kwargs(factory, {"num_features": n_inputs, **kwargs}, "backbone__")
        return backbone, kwargs
    if inspect.isclass(backbone):
        routing.check_kwargs(backbone, kwargs, "backbone__")
        try:
            return backbone(n_inputs, n_outputs, **kwargs), {}
        except TypeError as error:
            raise TypeError(
                f"Building backbone {backbone.__name__}(n_features, n_outputs, **backbone__) "
                f"failed: {error}. A backbone class is called with the number of input "
                "features and of outputs, plus the backbone__ parameters."
            ) from error
    return copy.deepcopy(backbone), {}


def input_layout(
    params: dict[str, Any], n_inputs: int, categories: CategoryCodes | None
) -> InputLayout:
    """What the network's first layer takes for ``n_inputs`` encoded columns: a registry
    backbone one-hot encodes or embeds the category codes (and may embed the numbers), a
    module of the user's takes the columns as they are."""
    if not isinstance(params["backbone"], str) or categories is None:
        return InputLayout(int(n_inputs))
    cardinalities = tuple(int(c) for c in categories.cardinalities)
    return InputLayout(int(n_inputs) - len(cardinalities), cardinalities)


def task_arguments(
    params: dict[str, Any],
    n_inputs: int,
    n_outputs: int,
    categories: CategoryCodes | None,
    epochs: int,
    auto_ensemble: int,
) -> dict[str, Any]:
    """The arguments every tabular Task gets from the estimator's parameters."""
    backbone, backbone_kwargs = backbone_argument(params, n_inputs, n_outputs)
    return {
        "num_inputs": n_inputs,
        "backbone": backbone,
        "backbone_kwargs": backbone_kwargs,
        "optimizer": params["optimizer"],
        "optimizer_kwargs": params["optimizer_kwargs"],
        "learning_rate": params["learning_rate"],
        "categorical_cardinalities": None if categories is None else categories.cardinalities,
        "numeric_embedding": params["numeric_embedding"],
        # models pickled before n_ensemble existed had one member
        "n_ensemble": fit_plan.ensemble_size(
            params.get("n_ensemble", 1), params["backbone"], auto_ensemble
        ),
        **fit_plan.schedule(params["lr_schedule"], epochs),
    }


def seeded_task(build: Callable[[], Task], seed: int | None, seed_global: bool = False) -> Task:
    """``build()`` with the initial weights it draws (a backbone class built, the head)
    coming from ``seed`` (None: the draws are discarded, as when saved weights replace
    them).

    skflash's own networks draw them from a generator of this thread's own
    (:class:`SeededDraws`): another thread's Trainer resets torch's global generator after
    its sanity check. A network of the user's (``seed_global``) is built after seeding
    the global generator, under the seeding lock, as it may seed or draw past torch's
    functions itself; the generator is restored afterwards.
    """
    if not seed_global:
        with SeededDraws(0 if seed is None else seed):
            return build()
    devices = None if torch.cuda.is_available() else []
    with SEEDING, torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        return build()


def trainable_count(task: Task) -> int:
    """Trainable parameters: the multiply-adds of one row through a dense network."""
    return sum(p.numel() for p in task.parameters() if p.requires_grad)


def preprocess_for(
    task: Task, rows: TrainingRows, params: dict[str, Any], standardize_target: bool
) -> NumpyPreprocess:
    """The Preprocess of a new model, in the dtype it trains in (see
    :func:`~skflash.estimators.fit_plan.training_dtype`)."""
    work = rows.n_rows * trainable_count(task)
    dtype = fit_plan.training_dtype(rows.dtype, params["precision"], params["accelerator"], work)
    return NumpyPreprocess(
        standardize_inputs=params["standardize_inputs"],
        standardize_target=standardize_target,
        dtype=dtype,
        target_dtype=rows.target.tensor_dtype(dtype),
        categories=rows.table.categories,
        indicators=rows.table.missing,
        levels=rows.table.levels,
    )


def datamodule_for(task: Task, rows: TrainingRows, seed: int) -> NumpyDataModule:
    """The DataModule over the training rows, through the Task's Preprocess; fused epoch
    chunks are offered, and the Task takes them when nothing watches its steps."""
    return NumpyDataModule.from_arrays(
        rows.train,
        val=rows.val,
        preprocess=task.preprocess,
        postprocess=task.postprocess,
        batch_size=rows.batch_size,
        seed=seed,
        iterable=rows.streamed,
        fused_steps=True,
    )


def check_network_outputs(task: Task, rows: TrainingRows, owner: str) -> None:
    """Refuse, before training, a network of the user's that does not take the encoded
    rows or does not give one output per target (per class logit), where torch would fail
    deep in the first step or, for a classifier, answer with the wrong number of classes.
    Runs the network once on two training rows; a streamed fit is not checked."""
    if not isinstance(rows.train, tuple):
        return
    outputs = rows.target.n_model_outputs
    shapes: list[torch.Size] = []
    handle = task.model.register_forward_hook(lambda m, args, out: shapes.append(out.shape))
    try:
        next(iter(task.predict_batches(rows.train[0][:2], batch_size=2)))
    except Exception as error:
        if not shapes:  # the network itself failed
            raise ValueError(
                f"The network given as backbone failed on the training rows, "
                f"{rows.n_inputs} encoded columns each: {error}. {owner} feeds it "
                f"(batch, {rows.n_inputs}) tensors: its first layer must take "
                f"{rows.n_inputs} inputs."
            ) from error
    finally:
        handle.remove()
    if shapes and (len(shapes[0]) != 2 or shapes[0][-1] != outputs):
        classifier = isinstance(rows.target, ClassLabels)
        what = f"{outputs} {'logit' if classifier else 'value'}{'s' if outputs > 1 else ''}"
        binary = " (one logit for two classes)" if classifier and outputs == 1 else ""
        raise ValueError(
            f"The network given as backbone outputs shape {tuple(shapes[0])} for 2 rows, "
            f"but {owner} trains it on {what} per row{binary}: end it with a layer of "
            f"{outputs} output{'s' if outputs > 1 else ''}, such as nn.Linear(..., {outputs})."
        )
