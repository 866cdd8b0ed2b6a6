"""Plots of fitted estimators, following scikit-learn's Display API."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted


def _pyplot(caller: str) -> Any:
    """matplotlib's pyplot, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            f"{caller} needs matplotlib: pip install 'skflash[plot]' (or matplotlib)."
        ) from error
    return plt


def _with_history(estimator: Any) -> Any:
    """The skflash estimator whose ``history_`` is plotted: ``estimator`` itself, or the
    one a fitted meta-estimator ends in (a Pipeline's final step, a search's
    ``best_estimator_``, a TransformedTargetRegressor's ``regressor_``)."""
    current = estimator
    while not hasattr(current, "history_"):
        steps = getattr(current, "steps", None)
        if isinstance(steps, list) and steps and isinstance(steps[-1], tuple):
            inner = steps[-1][-1]
        else:
            inner = next(
                (
                    getattr(current, name)
                    for name in ("best_estimator_", "regressor_")
                    if hasattr(current, name)
                ),
                None,
            )
        if inner is None or isinstance(inner, str):  # "passthrough" or nothing held
            break
        current = inner
    if hasattr(current, "history_"):
        return current
    check_is_fitted(current)  # an unfitted skflash estimator (or step) says so
    named = type(estimator).__name__
    if current is not estimator:
        named += f"'s final estimator {type(current).__name__}"
    raise TypeError(
        f"LossCurveDisplay plots the history_ of a fitted FlashRegressor or "
        f"FlashClassifier, and {named} has none. Pass the skflash estimator itself (for a "
        f"Pipeline, pipe[-1])."
    )


class LossCurveDisplay:
    """The losses recorded per epoch by a fitted skflash estimator, one line each.

    Build it with :meth:`from_estimator`; :meth:`plot` draws it (again) on an axis.
    When early stopping chose an epoch, a dashed vertical line marks it.

    Parameters
    ----------
    epochs : ndarray of shape (n_epochs,)
        Epoch numbers, from 1.
    losses : dict of str to ndarray of shape (n_epochs,)
        Each recorded loss (``train_loss``, ``val_loss``...) per epoch; NaN where an
        epoch has no value.
    best_epoch : int, optional
        The epoch (from 1) whose weights early stopping kept.
    estimator_name : str, optional
        Shown as the title.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    lines_ : list of matplotlib Line2D
        One per loss, in the order of ``losses``.
    best_line_ : matplotlib Line2D or None
        The mark of the best epoch.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_diabetes
    >>> from skflash import FlashRegressor
    >>> from skflash.plotting import LossCurveDisplay
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = FlashRegressor(max_epochs=20, early_stopping=True, random_state=0).fit(X, y)
    >>> display = LossCurveDisplay.from_estimator(reg)
    >>> [line.get_label() for line in display.lines_]
    ['train_loss', 'val_loss']
    """

    def __init__(
        self,
        *,
        epochs: np.ndarray,
        losses: dict[str, np.ndarray],
        best_epoch: int | None = None,
        estimator_name: str | None = None,
    ) -> None:
        self.epochs = epochs
        self.losses = losses
        self.best_epoch = best_epoch
        self.estimator_name = estimator_name

    def plot(self, ax: Any = None, *, log_scale: bool = False, **kwargs: Any) -> LossCurveDisplay:
        """Draw the curves on ``ax`` (a new figure if None); ``kwargs`` go to ``ax.plot``.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw; a new figure when omitted.
        log_scale : bool, default=False
            A logarithmic loss axis.
        **kwargs
            Passed to ``ax.plot`` (line styles, colours).

        Returns
        -------
        display : LossCurveDisplay
            The display, holding the figure, the axes and the lines drawn.
        """
        plt = _pyplot("LossCurveDisplay.plot")
        if ax is None:
            _, ax = plt.subplots()
        self.lines_ = [
            ax.plot(self.epochs, values, label=name, **kwargs)[0]
            for name, values in self.losses.items()
        ]
        self.best_line_ = None
        if self.best_epoch is not None:
            self.best_line_ = ax.axvline(
                self.best_epoch,
                linestyle="--",
                color="gray",
                label=f"best epoch ({self.best_epoch})",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if log_scale:
            ax.set_yscale("log")
        if self.estimator_name:
            ax.set_title(self.estimator_name)
        ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator: Any, *, ax: Any = None, **kwargs: Any) -> LossCurveDisplay:
        """Plot the loss curves of a fitted FlashRegressor or FlashClassifier.

        Parameters
        ----------
        estimator : fitted skflash estimator, or a meta-estimator ending in one
            Anything with a ``history_`` of per-epoch dicts (``best_epoch_`` is used if
            present), or a fitted Pipeline whose final step has one (likewise a search's
            ``best_estimator_``, a TransformedTargetRegressor's ``regressor_``): its
            curves are plotted.
        ax : matplotlib Axes, optional
            Where to draw; a new figure when omitted.
        **kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : LossCurveDisplay
            The display, holding the figure, the axes and the lines drawn.
        """
        _pyplot("LossCurveDisplay.from_estimator")
        estimator = _with_history(estimator)
        check_is_fitted(estimator, "history_")
        history = estimator.history_
        names = list(dict.fromkeys(k for row in history for k in row if k.endswith("loss")))
        losses = {
            name: np.array([row.get(name, np.nan) for row in history], dtype=float)
            for name in names
        }
        epochs = np.array([row["epoch"] + 1 for row in history])
        best = getattr(estimator, "best_epoch_", None)
        display = cls(
            epochs=epochs,
            losses=losses,
            best_epoch=None if best is None else best + 1,
            estimator_name=type(estimator).__name__,
        )
        return display.plot(ax=ax, **kwargs)
