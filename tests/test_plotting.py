"""LossCurveDisplay follows scikit-learn's Display API (drawn with matplotlib's Agg)."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from skflash import FlashClassifier, FlashRegressor  # noqa: E402
from skflash.plotting import LossCurveDisplay  # noqa: E402


@pytest.fixture
def diabetes():
    return load_diabetes(return_X_y=True)


def test_one_line_per_loss_and_the_best_epoch_marked(diabetes):
    X, y = diabetes
    reg = FlashRegressor(max_epochs=15, early_stopping=True, random_state=0).fit(X, y)
    display = LossCurveDisplay.from_estimator(reg)
    assert [line.get_label() for line in display.lines_] == ["train_loss", "val_loss"]
    train = [row["train_loss"] for row in reg.history_]
    np.testing.assert_allclose(display.lines_[0].get_ydata(), train)
    np.testing.assert_array_equal(display.lines_[0].get_xdata(), np.arange(1, reg.n_iter_ + 1))
    assert display.best_line_.get_xdata()[0] == reg.best_epoch_ + 1
    assert display.figure_ is display.ax_.figure
    assert display.ax_.get_xlabel() == "epoch" and display.ax_.get_title() == "FlashRegressor"
    plt.close("all")


def test_drawn_on_a_given_axis_without_early_stopping(diabetes):
    X, y = diabetes
    clf = FlashClassifier(max_epochs=5, random_state=0).fit(X, y > np.median(y))
    _, ax = plt.subplots()
    display = LossCurveDisplay.from_estimator(clf, ax=ax, log_scale=True, color="k")
    assert display.ax_ is ax and display.best_line_ is None
    assert len(display.lines_) == 1 and ax.get_yscale() == "log"
    assert display.lines_[0].get_color() == "k"
    again = display.plot()  # a new figure
    assert again.ax_ is not ax
    plt.close("all")


def test_unfitted_estimator_is_refused():
    with pytest.raises(NotFittedError):
        LossCurveDisplay.from_estimator(FlashRegressor())


def test_a_fitted_pipeline_plots_its_final_step(diabetes):
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), FlashRegressor(max_epochs=3, random_state=0))
    with pytest.raises(NotFittedError, match="FlashRegressor"):
        LossCurveDisplay.from_estimator(pipe)
    pipe.fit(X, y)
    display = LossCurveDisplay.from_estimator(pipe)
    train = [row["train_loss"] for row in pipe[-1].history_]
    np.testing.assert_allclose(display.lines_[0].get_ydata(), train)
    assert display.ax_.get_title() == "FlashRegressor"
    # and a meta-estimator holding such a pipeline
    wrapped = TransformedTargetRegressor(pipe, func=np.log, inverse_func=np.exp).fit(X, y)
    display = LossCurveDisplay.from_estimator(wrapped)
    assert len(display.lines_[0].get_ydata()) == wrapped.regressor_[-1].n_iter_
    plt.close("all")


def test_a_pipeline_ending_elsewhere_is_refused_with_what_to_pass(diabetes):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    with pytest.raises(TypeError, match=r"Pipeline's final estimator Ridge.*pipe\[-1\]"):
        LossCurveDisplay.from_estimator(pipe)
    with pytest.raises(TypeError, match="Ridge has none"):
        LossCurveDisplay.from_estimator(pipe[-1])


def test_html_repr_links_each_estimator_to_its_api_page():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skflash.estimators.base import DOCS_URL

    html = make_pipeline(StandardScaler(), FlashClassifier())._repr_html_()
    for cls in (FlashRegressor, FlashClassifier):
        link = cls()._get_doc_link()
        assert link == f"{DOCS_URL}api/generated/skflash.{cls.__name__}.html"
    assert FlashClassifier()._get_doc_link() in html
    # (tests/test_docs.py builds the site and finds these pages at these paths)
