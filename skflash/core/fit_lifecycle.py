"""What the owner of a Task's fits (an estimator) asks of it before, between and after.

A Task trains under a Trainer like any LightningModule; these methods let a caller run
several fits on one Task (continued training, ``partial_fit``) and undo a fit that
fails, without reaching into the Task's attributes.
"""

from __future__ import annotations

from typing import Any

import torch

from skflash.core.optimizers import optimizer_class


class TaskSnapshot:
    """What a fit changes on a fitted Task, kept to undo a fit that fails."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.attributes = dict(vars(task))
        self.preprocess = task.preprocess
        self.preprocess_attributes = dict(vars(task.preprocess))
        self.weights = {k: v.detach().clone() for k, v in task.state_dict().items()}
        self.dtype, self.device = task.dtype, task.device

    def restore(self) -> None:
        """Put the Task back as it was: attributes, Preprocess, weights, dtype, device."""
        self.task.to(device=self.device, dtype=self.dtype)  # a precision may have cast it
        vars(self.task).clear()
        vars(self.task).update(self.attributes)
        vars(self.preprocess).clear()
        vars(self.preprocess).update(self.preprocess_attributes)
        with torch.no_grad():
            self.task.load_state_dict(self.weights)
        # fit put every submodule in training mode (where an ensemble returns each
        # member's outputs); the restored vars only cover the Task's own flag.
        self.task.eval()


class FitLifecycle:
    """Mixin of :class:`~skflash.core.model.Task`: one owner running fit after fit."""

    #: An optimizer ``state_dict`` to continue from: ``configure_optimizers`` loads it
    #: into the new optimizer (moments and step counts carry over; the learning rate is
    #: the Task's own). None starts the optimizer afresh, as Lightning does.
    resume_optimizer_state: dict[str, Any] | None = None

    def snapshot(self) -> TaskSnapshot:
        """The Task's state now; ``snapshot().restore()`` undoes what a fit changed."""
        return TaskSnapshot(self)

    def prepare_fit(self, log_epoch_metrics: bool = True) -> None:
        """Ready the Task for a fit under a Trainer private to its owner.

        Nothing reads the Trainer's step count, so fused steps may skip it; the Task is
        put in training mode (Lightning keeps the mode it finds).

        Parameters
        ----------
        log_epoch_metrics : bool, default=True
            False skips Lightning's logging where nothing reads the logged values.
        """
        self.lean_steps = True
        self.log_epoch_metrics = log_epoch_metrics
        self.train()

    def continue_training(
        self,
        optimizer: Any,
        optimizer_kwargs: dict[str, Any],
        learning_rate: float,
        optimizer_state: dict[str, Any] | None = None,
        scheduler: Any = None,
        scheduler_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Train on from the current weights with these optimizer settings.

        The Preprocess keeps the statistics it learned, and ``optimizer_state`` (of the
        last fit) carries on when the optimizer is of the same class.

        Parameters
        ----------
        optimizer : str or type
            The optimizer's name or class.
        optimizer_kwargs : dict
            Its keyword arguments.
        learning_rate : float
            The learning rate.
        optimizer_state : dict, optional
            The state the last fit's optimizer ended with.
        scheduler : str or type, optional
            The learning-rate scheduler's name or class.
        scheduler_kwargs : dict, optional
            Its keyword arguments.
        """
        same_optimizer = optimizer_class(self.optimizer) is optimizer_class(optimizer)
        self.optimizer = optimizer
        self.optimizer_kwargs = dict(optimizer_kwargs)
        self.learning_rate = learning_rate
        self.scheduler = scheduler
        self.scheduler_kwargs = dict(scheduler_kwargs or {})
        self.resume_optimizer_state = optimizer_state if same_optimizer else None
        self._keep_statistics()

    def finish_fit(self, trainer: Any) -> dict[str, Any] | None:
        """Detach the Task from the fit's Trainer and its data, ready to predict.

        The Task is put in eval mode.

        Parameters
        ----------
        trainer : pytorch_lightning.Trainer
            The Trainer that ran the fit.

        Returns
        -------
        dict or None
            The optimizer's state, for a later continued fit.
        """
        state = trainer.optimizers[0].state_dict() if trainer.optimizers else None
        self.trainer = None
        self.eval()
        self.resume_optimizer_state = None
        self._keep_statistics()
        return state

    def _keep_statistics(self) -> None:
        if hasattr(self.preprocess, "learn_statistics"):
            self.preprocess.learn_statistics = False
