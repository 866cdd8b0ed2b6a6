"""The scikit-learn protocol that FlashRegressor and FlashClassifier share.

The estimator is a front: a fit hands its parameters to :mod:`.fit_plan`, its data to
:mod:`skflash.data.training_rows`, builds its pieces with :mod:`.assembly`, trains them
with :mod:`.training`, and keeps what came out. ``docs/architecture.md`` maps the path.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from skflash.core.model import Task
from skflash.data.process import Postprocess
from skflash.data.tables import TableEncoder
from skflash.data.targets import ClassLabels, RegressionTargets
from skflash.data.training_rows import RowRules, TrainingRows, training_rows
from skflash.estimators import fit_plan, routing, serving, user_task
from skflash.estimators.assembly import (
    check_network_outputs,
    input_layout,
    preprocess_for,
    seeded_task,
    task_arguments,
)
from skflash.estimators.continued_fit import MODEL_SETTINGS, check_same_model, check_same_namespace
from skflash.estimators.parameters import Parameter, with_parameters_section
from skflash.estimators.persistence import load_state, saved_state
from skflash.estimators.prediction import model_outputs
from skflash.estimators.shared_parameters import KWARGS_DOC, SHARED_ATTRIBUTES, SHARED_PARAMETERS
from skflash.estimators.training import FitOutcome, quiet_fit
from skflash.lightning_namespaces import module_in, task_namespace

if TYPE_CHECKING:
    from typing_extensions import Self


#: The documentation site (also pyproject's Documentation URL); each estimator's API page
#: lives at ``api/generated/<module>.<class>.html`` under it.
DOCS_URL = "https://skflash.readthedocs.io/en/latest/"


class BaseFlashEstimator(BaseEstimator):
    """Shared machinery of the skflash estimators; not meant to be used directly."""

    #: The HTML repr (in notebooks) links each estimator, by its "?", to its API page.
    _doc_link_module = "skflash"
    _doc_link_template = DOCS_URL + "api/generated/skflash.{estimator_name}.html"

    #: Every constructor parameter, in signature order: the defaults, what each accepts
    #: and its docstring entry (the constructors are written out to match it).
    _parameters: tuple[Parameter, ...] = SHARED_PARAMETERS
    #: The kind of target the estimator learns.
    _targets: type[RegressionTargets] | type[ClassLabels] = RegressionTargets
    #: Members ``n_ensemble="auto"`` trains with the "mlp" and "linear" backbones.
    _auto_ensemble = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Write the Parameters section of an estimator's docstring from its table."""
        super().__init_subclass__(**kwargs)
        if "_parameters" in cls.__dict__ and cls.__doc__:
            cls.__doc__ = with_parameters_section(
                cls.__doc__, cls._parameters, KWARGS_DOC, SHARED_ATTRIBUTES
            )

    def _store_routed(self, kwargs: dict[str, Any], kind: type = TypeError) -> None:
        """Keep each routed ``component__arg`` (in a private mapping, so that the
        estimator's public attributes are its signature's); refuse other names."""
        names = [p.name for p in self._parameters]
        for key in kwargs:
            if not routing.is_routed(key) and key != _VAR_KEYWORD:
                routing.refuse_unknown(type(self).__name__, key, names, kind)
        if _VAR_KEYWORD in kwargs:
            self.kwargs = kwargs[_VAR_KEYWORD]
        routed = {k: v for k, v in kwargs.items() if k != _VAR_KEYWORD}
        if routed:  # a new mapping: copies of an estimator never share one
            self._routed = {**getattr(self, "_routed", {}), **routed}

    # ------------------------------------------------------------------ parameters
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.update(routing.routed_params(self))
        return params

    def set_params(self, **params: Any) -> Self:
        own = {p.name for p in self._parameters}
        extra = {
            k: v for k, v in params.items() if routing.is_routed(k) or k.split("__")[0] not in own
        }
        self._store_routed(extra, kind=ValueError)
        rest = {k: v for k, v in params.items() if k not in extra}
        if rest:
            super().set_params(**rest)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing numbers: see data/missing_values.py
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "task_")

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Self:
        """Train on ``X, y``; with ``warm_start`` a fitted network continues training.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The training rows: numbers, or a table with categorical columns.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Regression targets; or class labels of any type scikit-learn accepts, or a
            (n_samples, n_labels) 0/1 indicator matrix for multi-label classification.
        sample_weight : array-like of shape (n_samples,), optional
            Weights each sample's loss; a zero weight is the same as leaving it out.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=self.warm_start, max_epochs=None)

    def _fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        incremental: bool,
        max_epochs: int | None,
        classes: Any = None,
    ) -> Self:
        """Fit, or leave the estimator exactly as it was when anything raises.

        A failed or interrupted refit keeps the previous model (weights, optimizer state,
        attributes); a failed first fit leaves the estimator unfitted.
        """
        saved = dict(vars(self))
        continuing = incremental and hasattr(self, "task_")
        snapshot = self.task_.snapshot() if continuing else None
        try:
            # a fit called inside torch.inference_mode() (a serving block) still trains
            with torch.inference_mode(False), torch.enable_grad():
                self._train(X, y, sample_weight, continuing, max_epochs, classes)
        except BaseException:
            if snapshot is not None:
                snapshot.restore()
            vars(self).clear()
            vars(self).update(saved)
            raise
        return self

    def _train(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        continuing: bool,
        max_epochs: int | None,
        classes: Any,
    ) -> None:
        params = fit_plan.checked_params(self)
        if continuing:
            check_same_model(self, params)
            params["lightning"] = fit_plan.lightning_namespace(params, task_namespace(self.task_))
        else:  # as the user set them, before "auto" is resolved: what continued fits compare
            self._model_settings = {k: params[k] for k in MODEL_SETTINGS if k in params}
        if continuing and params["task"] is None:
            # the fitted network goes on: the decay is sized for its input, not for the
            # one that numeric_embedding="auto" would give the new rows
            params["numeric_embedding"] = self._network_params.get("numeric_embedding")
        plan = fit_plan.plan_fit(params, continuing, max_epochs)
        rules = RowRules(
            targets=self._target_kind(params),
            table=self._table if continuing else None,
            target=self._target if continuing else None,
            categorical_features=params["categorical_features"],
            class_weight=params.get("class_weight"),
            validation_fraction=plan.validation_fraction,
            holdout_above=plan.holdout_above,
            split_seed=plan.split_seed,
            shuffle_seed=plan.shuffle_seed,
            batch_size=functools.partial(
                fit_plan.batch_size,
                params["batch_size"],
                large_recipe=fit_plan.large_table_recipe(params, plan.scheduled),
            ),
            classes=classes,
            discrete_features=params["discrete_features"],
            levels_above=fit_plan.LARGE_TABLE_ROWS,
        )
        rows = training_rows(self, X, y, sample_weight, rules)
        layout = input_layout(params, rows.n_inputs, rows.table.categories)
        plan = fit_plan.sized_to_table(plan, rows.n_rows, layout)
        params = plan.params
        fit_plan.check_codes_fit(rows.table.categories, params["precision"])
        with quiet_fit(int(params["verbose"])):
            if continuing and params["task"] is not None:
                task = self.task_
                task.continue_training(
                    **user_task.continue_arguments(task, params),
                    optimizer_state=self._optimizer_state,
                )
            elif continuing:
                task = self.task_
                check_same_namespace(task, params["lightning"])
                lr_schedule = params["lr_schedule"] if plan.scheduled else None
                task.continue_training(
                    params["optimizer"],
                    params["optimizer_kwargs"],
                    params["learning_rate"],
                    optimizer_state=self._optimizer_state,
                    **fit_plan.schedule(lr_schedule, plan.epochs),
                )
            else:
                task = self._new_model(params, plan, rows)
            # skflash's Lightning classes from the namespace of the user's objects
            training = module_in("skflash.estimators.training", params["lightning"])
            assembly = module_in("skflash.estimators.assembly", params["lightning"])
            outcome = training.run_trainer(
                task,
                assembly.datamodule_for(task, rows, plan.shuffle_seed),
                params,
                plan.epochs,
                plan.init_seed,
                type(self).__name__,
                streamed=rows.streamed,
            )
        self._keep(task, rows, outcome, continuing)

    def _new_model(
        self, params: dict[str, Any], plan: fit_plan.FitPlan, rows: TrainingRows
    ) -> Task:
        """A new Task with its initial weights drawn from the plan's seed, and the
        Preprocess it trains through."""
        network = {k: v for k, v in params.items() if k not in _NOT_NETWORK}
        network.update(n_inputs=rows.n_inputs, epochs=plan.epochs)
        task = seeded_task(
            lambda: self._built_task(
                params, rows.n_inputs, rows.target, rows.table.categories, plan.epochs
            ),
            plan.init_seed,
            seed_global=not serving.own_network(params["backbone"], params["task"]),
        )
        task.preprocess = preprocess_for(task, rows, params, self._standardize_target())
        task.to(task.preprocess.dtype)
        if not isinstance(params["backbone"], str) and params["task"] is None:
            check_network_outputs(task, rows, type(self).__name__)
        self._network_params = network  # what rebuilds this network when unpickled
        return task

    def _built_task(
        self,
        params: dict[str, Any],
        n_inputs: int,
        target: RegressionTargets | ClassLabels,
        categories: Any,
        epochs: int,
    ) -> Task:
        """The fit's Task: the user's own (``task=``), else this estimator's built-in one
        from the shared arguments; also what rebuilds a pickled model."""
        if params.get("task") is not None:
            classes = None if self._targets is RegressionTargets else target.n_model_outputs
            return user_task.build_task(
                params,
                n_inputs,
                target.n_model_outputs,
                classes,
                self._user_postprocess(),
                type(self).__name__,
            )
        arguments = task_arguments(
            params, n_inputs, target.n_model_outputs, categories, epochs, self._auto_ensemble
        )
        return self._new_task(arguments, target, params)

    def _keep(self, task: Task, rows: TrainingRows, outcome: FitOutcome, continuing: bool) -> None:
        """What the fit learned, as the estimator's attributes."""
        serving.reset(task, serving.own_network(self.backbone, getattr(self, "task", None)))
        self.task_ = task
        self._table: TableEncoder = rows.table
        self._target = rows.target
        self._n_trainable = outcome.n_trainable  # predict sizes its threads by it
        self._optimizer_state = outcome.optimizer_state
        previous = self.history_ if continuing else []
        offset = len(previous)
        self.history_ = previous + [
            {**row, "epoch": row["epoch"] + offset} for row in outcome.history
        ]
        self.n_iter_ = len(self.history_)
        best = outcome.best_epoch
        self.best_epoch_ = None if best is None else best + offset
        self._learned_target(rows.target)

    # ------------------------------------------------------------------ predict
    def _forward(self, X: Any) -> Any:
        """Model outputs for ``X``, in batches, after the Postprocess."""
        if "task_" not in vars(self):  # scikit-learn's check builds the tags: only to refuse
            check_is_fitted(self)
        return model_outputs(self, X)

    def to_onnx(self, path: Any) -> str:
        """Write the fitted model to ``path`` as one ONNX graph, for serving without Python.

        The graph holds the learned scaling, the category codes (categorical columns are
        string inputs named after their columns; numeric columns form one float32 input
        ``numeric``), the network, and the outputs: ``predictions`` (regressor), or
        ``probabilities`` and ``labels`` (classifier). The batch size is free. Needs
        ``pip install 'skflash[onnx]'``.

        Parameters
        ----------
        path : str or os.PathLike
            Where to write the graph.

        Returns
        -------
        path : str
            The path written, for ``onnxruntime.InferenceSession(path)``.
        """
        check_is_fitted(self)
        from skflash.onnx_graph import export_onnx

        return export_onnx(self, path)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        """The state as plain values and numpy arrays (see :mod:`.persistence`)."""
        return saved_state(super().__getstate__())

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(load_state(self, state))

    # ------------------------------------------------------------------ subclass hooks
    def _standardize_target(self) -> bool:
        return False

    def _target_kind(self, params: dict[str, Any]) -> type[RegressionTargets] | type[ClassLabels]:
        """How the target is encoded for the Task being trained."""
        return self._targets

    def _user_postprocess(self) -> Postprocess:
        """The Postprocess a user's Task predicts through (model outputs as they are)."""
        return Postprocess()

    def _learned_target(self, target: RegressionTargets | ClassLabels) -> None:
        """Set the public attributes that describe the fitted target."""

    def _new_task(self, arguments: dict[str, Any], target: Any, params: dict[str, Any]) -> Task:
        """The Task this estimator trains, from the shared ``arguments`` (see
        :func:`~skflash.estimators.assembly.task_arguments`) and its own parameters."""
        raise NotImplementedError


#: scikit-learn's check that constructors and set_params never raise passes every name in
#: the signature, the ``**kwargs`` catch-all's own name too: that one name is stored and
#: refused at ``fit`` (see ``fit_plan.checked_params``); any other unknown name at once.
_VAR_KEYWORD = "kwargs"


#: Parameters that do not shape the network (the rest rebuild it when unpickled).
_NOT_NETWORK = ("callbacks", "random_state", "trainer_kwargs")
