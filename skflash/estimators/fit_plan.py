"""A fit's parameters turned into its decisions, each decided here and nowhere else.

``docs/architecture.md`` lists the decisions and their owners. Each rule is a small
function of plain values, so it is tested without training anything.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from skflash.core.backbones import ENSEMBLE_BACKBONES, TABULAR_BACKBONES
from skflash.core.optimizers import (
    check_supported,
    optimizer_class,
    precision_kwargs,
    recipe,
    weight_decay_kwargs,
)
from skflash.core.tabular_input import InputLayout
from skflash.core.trainer import Trainer
from skflash.data.categories import CategoryCodes
from skflash.estimators import routing
from skflash.estimators.parameters import InvalidParameterError, Parameter, check_parameters
from skflash.estimators.user_task import check_task_params, refuse_module_as_backbone
from skflash.lightning_namespaces import CLASSIC, namespace_of

#: Trainer arguments the estimator sets from its own parameters.
OWN_TRAINER_ARGS = ("max_epochs", "accelerator", "devices", "precision", "callbacks")
#: Multiply-adds per epoch (training rows x trainable parameters) from which float64
#: input trains in float32: below it, float64's exactness costs little time. Tables of a
#: few thousand rows pass it (friedman1, 3,000 x 10: 4.0 s per fit in float64, 2.0 s in
#: float32, the same R²); scikit-learn's small examples and checks stay in float64.
FLOAT64_MAX_WORK = 10_000_000
#: Largest integer each half-precision input dtype holds exactly (category codes).
EXACT_INTEGERS = {"bf16-true": 256, "16-true": 2048}
#: Rows per forward pass at predict time: large inputs stream through in batches.
PREDICT_BATCH_SIZE = 8192


def _closest(name: str, choices: list[str]) -> str:
    hint = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {hint[0]!r}?" if hint else "."


def checked_params(estimator: Any, table: tuple[Parameter, ...] | None = None) -> dict[str, Any]:
    """Every parameter of ``estimator`` checked and normalised (numpy scalars as Python
    numbers), with the routed ones and what they resolve to (``learning_rate="auto"``,
    the optimizer's arguments, the backbone's)."""
    table = estimator._parameters if table is None else table
    if "kwargs" in vars(estimator):  # the one unknown keyword kept until now (see base.py)
        routing.refuse_unknown(type(estimator).__name__, "kwargs", [p.name for p in table])
    params = check_parameters(estimator, table)
    refuse_module_as_backbone(type(estimator).__name__, params["backbone"])
    params["task_kwargs"] = routing.routed(estimator, "task__")
    if params.get("task") is not None:
        check_task_params(estimator, params, {p.name: p.default for p in table})
    elif params["task_kwargs"]:
        first = next(iter(params["task_kwargs"]))
        raise ValueError(
            f"{type(estimator).__name__} got task__{first} but no task: task__<arg> "
            "parameters go to a Task of your own, given as task=YourTask (the built-in "
            "network takes learning_rate, optimizer... directly)."
        )
    optimizer = optimizer_class(params["optimizer"])  # unknown names get the closest
    check_supported(optimizer)
    if str(params["precision"]).startswith("transformer-engine"):
        raise InvalidParameterError(
            f"precision={params['precision']!r} needs an NVIDIA GPU with the "
            "transformer_engine package; use '16-mixed' or 'bf16-mixed' instead."
        )
    trainer_kwargs = routing.routed(estimator, "trainer__")
    for key in trainer_kwargs:
        if key in OWN_TRAINER_ARGS:
            raise ValueError(
                f"Set {key} with the estimator's own parameter {key!r}, not trainer__{key}."
            )
    routing.check_kwargs(Trainer.__init__, trainer_kwargs, "trainer__", own=OWN_TRAINER_ARGS)
    params["trainer_kwargs"] = trainer_kwargs
    params["lightning"] = lightning_namespace(params)
    routed_optimizer = routing.routed(estimator, "optimizer__")
    if "lr" in routed_optimizer:
        raise ValueError(
            "Set the learning rate with the estimator's own parameter 'learning_rate', "
            "not optimizer__lr (the learning-rate schedule and weight_decay='auto' "
            "follow learning_rate)."
        )
    routing.check_kwargs(optimizer, routed_optimizer, "optimizer__")
    if "weight_decay" not in routed_optimizer:  # checked now, set by the table's size
        rate = params["learning_rate"]
        weight_decay_kwargs(
            optimizer,
            params["weight_decay"],
            recipe(optimizer).learning_rate if rate == "auto" else rate,
        )
    params["optimizer_kwargs"] = routed_optimizer
    params["backbone_kwargs"] = routing.routed(estimator, "backbone__")
    if isinstance(params["backbone"], str) and params["backbone"] not in TABULAR_BACKBONES:
        raise InvalidParameterError(
            f"Unknown backbone {params['backbone']!r}"
            + _closest(params["backbone"], TABULAR_BACKBONES.available_keys())
            + f" Choose one of {TABULAR_BACKBONES.available_keys()}, or pass an "
            "nn.Module class or instance."
        )
    return params


#: Training rows above which a table is large. ``early_stopping="auto"`` stops early
#: there (as scikit-learn's HistGradientBoosting does), and the built-in network's fit
#: takes the large-table recipe: batches of :data:`LARGE_TABLE_BATCH_SIZE` rows at
#: the optimizer recipe's ``large_batch_factor`` times its rate, annealed over
#: :data:`LARGE_TABLE_EPOCHS` epochs (where each setting is ``"auto"``). Measured on
#: diamonds, CPS1988 and nlswork: as accurate as 200 epochs of 200-row batches, or more,
#: in a fifth to a tenth of the time.
LARGE_TABLE_ROWS = 10_000
AUTO_EARLY_STOPPING_ROWS = LARGE_TABLE_ROWS
LARGE_TABLE_BATCH_SIZE = 1024
LARGE_TABLE_EPOCHS = 28
#: ``max_epochs="auto"`` on a table that is not large: 200 epochs, or the epochs of
#: :data:`DEFAULT_STEPS` optimizer steps where those are fewer (beyond 2,400 training
#: rows in 200-row batches; mlc_churn's 4,000 rows: 120 epochs).
DEFAULT_EPOCHS = 200
DEFAULT_STEPS = 2_400
#: Training rows per network input from which a table that is not large supports sharper
#: functions: ``weight_decay="auto"`` weakens in proportion beyond it (see
#: :func:`decay_strength`), and ``numeric_embedding="auto"`` is periodic from it (see
#: :func:`numeric_embedding`).
ROWS_PER_INPUT = 100
#: ``batch_size="auto"`` on a table that is not large (fewer rows: all of them).
DEFAULT_BATCH_SIZE = 200
#: Dropout after each hidden layer of the built-in ``"mlp"`` network on a table of more
#: rows than a batch that is not large, unless ``backbone__dropout`` is given (see
#: :func:`backbone_kwargs`).
SMALL_TABLE_DROPOUT = 0.1


@dataclasses.dataclass(frozen=True)
class FitPlan:
    """What one call of ``fit`` or ``partial_fit`` does, decided before any data is read."""

    params: dict[str, Any]
    #: Epochs this call trains (``"auto"`` until :func:`sized_to_table` resolves it).
    epochs: int | str
    #: Whether the fitted network continues (``warm_start`` or ``partial_fit``).
    continuing: bool
    #: Whether a learning-rate schedule runs over the epochs (``partial_fit`` steps at
    #: the constant learning rate).
    scheduled: bool
    split_seed: int
    init_seed: int
    shuffle_seed: int

    @property
    def validation_fraction(self) -> float | None:
        return self.params["validation_fraction"] if self.params["early_stopping"] else None

    @property
    def holdout_above(self) -> int:
        """Training rows a fit must exceed to hold out validation rows (``"auto"``)."""
        return AUTO_EARLY_STOPPING_ROWS if self.params["early_stopping"] == "auto" else 0


def plan_fit(params: dict[str, Any], continuing: bool, max_epochs: int | None) -> FitPlan:
    """The plan of a fit (``max_epochs=None``) or of one ``partial_fit`` epoch."""
    random_state = check_random_state(params["random_state"])
    seeds = random_state.randint(np.iinfo(np.int32).max, size=3)
    return FitPlan(
        params=params,
        epochs=params["max_epochs"] if max_epochs is None else max_epochs,
        continuing=continuing,
        scheduled=max_epochs is None,
        split_seed=int(seeds[0]),
        init_seed=int(seeds[1]),
        shuffle_seed=int(seeds[2]),
    )


def on_cpu(accelerator: Any) -> bool:
    """Whether training runs on the CPU (``"auto"`` without an accelerator present)."""
    if isinstance(accelerator, str):
        if accelerator == "auto":
            return not (torch.cuda.is_available() or torch.backends.mps.is_available())
        return accelerator == "cpu"
    return type(accelerator).__name__ == "CPUAccelerator"


def training_dtype(x_dtype: np.dtype, precision: Any, accelerator: Any, work: int) -> torch.dtype:
    """The dtype of the tensors the model is fed, for an epoch of ``work`` multiply-adds.

    With a precision: float64 for the 64-bit ones and float32 otherwise; Lightning's
    precision plugin then casts the module and each batch (to float16 or bfloat16 for
    the ``-true`` precisions) or runs the steps under autocast (``-mixed``). Without one:
    float32 input trains in float32; float64 input trains in float64 (exact, as
    scikit-learn's MLP) while an epoch is small on the CPU, and in float32 on an
    accelerator or from :data:`FLOAT64_MAX_WORK` multiply-adds, where float64 costs
    1.3x to 2x the time (measured on 2 CPU cores).
    """
    if precision is not None:
        return torch.float64 if str(precision).startswith("64") else torch.float32
    if x_dtype != np.float64 or not on_cpu(accelerator):
        return torch.float32
    return torch.float64 if work < FLOAT64_MAX_WORK else torch.float32


def check_codes_fit(categories: CategoryCodes | None, precision: Any) -> None:
    """Category codes travel in the input's float dtype: refuse one that would round them."""
    limit = EXACT_INTEGERS.get(str(precision))
    if categories is None or limit is None or max(categories.cardinalities) <= limit:
        return
    raise ValueError(
        f"precision={precision!r} feeds the network inputs in a dtype that holds integers "
        f"exactly only up to {limit}, but a categorical column has "
        f"{max(categories.cardinalities) - 1} categories. Use a mixed precision "
        "('bf16-mixed' or '16-mixed'), which keeps the inputs in float32."
    )


def large_table_recipe(params: dict[str, Any], scheduled: bool) -> bool:
    """Whether a fit may take the large-table recipe: the built-in network's fit with its
    learning-rate schedule (not ``partial_fit``, not a Task of the user's own)."""
    return params.get("task") is None and scheduled


def batch_size(setting: int | str, n_rows: int, large_recipe: bool = False) -> int:
    """``batch_size`` resolved: ``"auto"`` is ``min(200, n_rows)``, or
    :data:`LARGE_TABLE_BATCH_SIZE` on a large table under the large-table recipe."""
    if setting != "auto":
        return int(setting)
    if large_recipe and n_rows > LARGE_TABLE_ROWS:
        return LARGE_TABLE_BATCH_SIZE
    return min(DEFAULT_BATCH_SIZE, n_rows)


def decay_strength(n_rows: int, n_inputs: int, recipe_fit: bool) -> float:
    """The share of ``weight_decay="auto"``'s shrink a fit takes.

    The decay is a prior that pulls each weight towards zero; the more training rows per
    weight, the less the data needs it. A small table's network (the 200-epoch recipe,
    where the shrink adds up over many steps) therefore takes the full shrink up to
    :data:`ROWS_PER_INPUT` rows per network input and a proportionally weaker one
    beyond. Measured 5-fold: friedman3 (2,400 rows, 4 inputs) R² 0.851 at full strength
    and 0.885 at 0.17; ames (2,344 rows, about 280 inputs) and diabetes keep it, at
    0.894 and 0.495. Large tables (their own recipe, 28 epochs), ``partial_fit`` (its
    blocks are not the table) and a Task of the user's own keep the full shrink.
    """
    if not recipe_fit or n_rows > LARGE_TABLE_ROWS or n_rows <= 0:
        return 1.0
    return min(1.0, ROWS_PER_INPUT * max(int(n_inputs), 1) / n_rows)


def numeric_embedding(
    setting: str | None, n_rows: int, layout: InputLayout, mlp_fit: bool
) -> str | None:
    """``numeric_embedding`` resolved: ``"auto"`` is ``"periodic"`` for the built-in
    ``"mlp"`` network's fit (``mlp_fit``; not ``partial_fit``, whose blocks are not the
    table) on a table that is not large with at least :data:`ROWS_PER_INPUT` training
    rows per network input, else None.

    Periodic features give the network the sharp and periodic functions of single
    features that such a table supports. Measured 5-fold: mlc_churn ROC AUC 0.908 ->
    0.922, credit_data 0.844 -> 0.850, friedman3 R² 0.886 -> 0.898; tables with fewer
    rows per input were hurt by them (diabetes, digits), and on large tables they
    tripled the time (nlswork).
    """
    if setting != "auto":
        return setting
    if not mlp_fit or n_rows > LARGE_TABLE_ROWS or not layout.num_numeric:
        return None
    return "periodic" if n_rows >= ROWS_PER_INPUT * layout.width() else None


def backbone_kwargs(
    kwargs: dict[str, Any], n_rows: int, mlp_fit: bool, batch: int
) -> dict[str, Any]:
    """The ``backbone__`` arguments with the built-in ``"mlp"`` network's dropout:
    :data:`SMALL_TABLE_DROPOUT` for its fit (``mlp_fit``; not ``partial_fit``) on a table
    that is not large but holds more rows than a ``batch``, where ``backbone__dropout`` is
    not given. A table of one batch trains on all its rows at each step, the same steps
    at every fit: it stays free of random draws, so that a row of weight 2 and the row
    twice give the same model, as scikit-learn's checks ask.

    A small table's 200-epoch recipe sees each row many times; dropping a tenth of the
    hidden units keeps the network from fitting their noise. Measured 5-fold with seeds
    0, 1 and 2: ames R² 0.894, 0.888, 0.887 -> 0.899, 0.900, 0.899; mlc_churn log-loss
    0.1727, 0.1749, 0.1793 -> 0.1716, 0.1715, 0.1766; diabetes 0.495 -> 0.498; friedman1
    0.959 -> 0.957-0.958; digits, breast_cancer and credit_data unchanged. On large
    tables (28 epochs) it did not help (nlswork 0.5437 -> 0.5426) and cost time.
    """
    if not mlp_fit or not batch < n_rows <= LARGE_TABLE_ROWS or "dropout" in kwargs:
        return kwargs
    return {**kwargs, "dropout": SMALL_TABLE_DROPOUT}


def auto_epochs(n_rows: int, batch: int) -> int:
    """``max_epochs="auto"`` on a table that is not large: :data:`DEFAULT_EPOCHS`, or the
    epochs of :data:`DEFAULT_STEPS` steps of ``batch`` rows where there are fewer."""
    steps_per_epoch = -(-max(int(n_rows), 1) // max(int(batch), 1))
    return int(min(DEFAULT_EPOCHS, -(-DEFAULT_STEPS // steps_per_epoch)))


def sized_to_table(plan: FitPlan, n_rows: int, layout: InputLayout | None = None) -> FitPlan:
    """The plan with what depends on the training table resolved: ``max_epochs="auto"``,
    ``learning_rate="auto"``, ``numeric_embedding="auto"``, the ``"mlp"`` network's
    dropout (:func:`backbone_kwargs`) and the ``weight_decay`` rule
    that follows the rate and the rows per network input of ``layout`` (see
    :data:`LARGE_TABLE_ROWS`, :func:`numeric_embedding` and :func:`decay_strength`;
    without ``layout`` the epochs are :data:`DEFAULT_EPOCHS`, there is no embedding and
    the decay keeps its full strength)."""
    params = dict(plan.params)
    own_recipe = large_table_recipe(params, plan.scheduled)
    large = own_recipe and n_rows > LARGE_TABLE_ROWS
    table_known = own_recipe and layout is not None  # the rules by rows per input apply
    layout = layout if layout is not None else InputLayout(0)
    mlp_fit = table_known and params["backbone"] == "mlp"
    params["numeric_embedding"] = numeric_embedding(
        params["numeric_embedding"], n_rows, layout, mlp_fit
    )
    batch = batch_size(params["batch_size"], n_rows, own_recipe)
    params["backbone_kwargs"] = backbone_kwargs(params["backbone_kwargs"], n_rows, mlp_fit, batch)
    epochs = plan.epochs
    if epochs == "auto":
        epochs = LARGE_TABLE_EPOCHS if large else DEFAULT_EPOCHS
        if table_known and not large and params["batch_size"] == "auto":
            epochs = auto_epochs(n_rows, batch)
    optimizer = optimizer_class(params["optimizer"])
    if params["learning_rate"] == "auto":
        rate = recipe(optimizer).learning_rate
        if large and params["batch_size"] == "auto" and params["lr_schedule"] is not None:
            rate *= recipe(optimizer).large_batch_factor
        params["learning_rate"] = rate
    routed = params["optimizer_kwargs"]
    # the rules' arguments, each replaced by one the user routes
    rules = precision_kwargs(optimizer, params["precision"])
    if "weight_decay" not in routed:
        width = layout.width(params["numeric_embedding"])
        strength = decay_strength(n_rows, width, table_known)
        rules.update(
            weight_decay_kwargs(
                optimizer, params["weight_decay"], params["learning_rate"], strength
            )
        )
    params["optimizer_kwargs"] = {**rules, **routed}
    return dataclasses.replace(plan, params=params, epochs=int(epochs))


def ensemble_size(setting: int | str, backbone: Any, auto: int) -> int:
    """``n_ensemble`` resolved: ``"auto"`` is ``auto`` members for the backbones that can
    be ensembled (``"mlp"``, ``"linear"``), else 1."""
    if setting != "auto":
        return int(setting)
    return auto if isinstance(backbone, str) and backbone in ENSEMBLE_BACKBONES else 1


def schedule(lr_schedule: str | None, epochs: int) -> dict[str, Any]:
    """The Task's scheduler arguments: cosine annealing to zero over the fit's epochs."""
    if lr_schedule is None:
        return {"scheduler": None, "scheduler_kwargs": {}}
    return {"scheduler": "cosineannealinglr", "scheduler_kwargs": {"T_max": epochs}}


def lightning_namespace(params: dict[str, Any], default: str = CLASSIC) -> str:
    """The Lightning package the fit's Trainer, Task and callbacks come from: that of the
    user's callbacks, accelerator and Trainer arguments (logger, strategy, plugins...),
    ``default`` when none is Lightning's (``pytorch_lightning``; a continued fit's, the
    fitted Task's)."""
    objects = [params["callbacks"], params["accelerator"], *params["trainer_kwargs"].values()]
    return namespace_of(objects, default)


def logs_epoch_metrics(params: dict[str, Any], validating: bool) -> bool:
    """Whether the fit pays for Lightning's logging (about 1 ms per value and epoch):
    only when something reads logged values (early stopping, the user's callbacks, a
    logger, Lightning's own progress bar)."""
    return bool(
        validating
        or params["callbacks"]
        or int(params["verbose"]) >= 2
        or params["trainer_kwargs"].get("logger")
    )
