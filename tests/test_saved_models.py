"""Models saved by skflash 0.2 load and predict as they did, and keep training.

"As they did" is to float64 rounding (relative 1e-12): the last bits of a matrix product
differ between CPUs (vector widths) and numpy or torch builds, so the same weights on
another machine are not bitwise the same predictions; a model that loaded wrongly is off
by far more. Labels must be equal.

The files in ``fixtures/models_0_2`` were written by ``fixtures/make_models_0_2.py`` with
the 0.2 layout of the estimators; the predictions saved beside them are the reference.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from make_models_0_2 import inputs  # noqa: E402

sio = pytest.importorskip("skops.io")
NAMES = ["regressor", "classifier", "categorical", "warm_started"]
DATA = {"regressor": "X", "classifier": "Xi", "categorical": "frame", "warm_started": "X"}


def _load(name: str, kind: str):
    path = FIXTURES / "models_0_2" / f"{name}.{kind}"
    if kind == "pkl":
        return pickle.loads(path.read_bytes())
    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


@pytest.mark.parametrize("kind", ["pkl", "skops"])
@pytest.mark.parametrize("name", NAMES)
def test_0_2_models_predict_as_saved(name, kind):
    model = _load(name, kind)
    X = inputs()[DATA[name]]
    expected = np.load(FIXTURES / "models_0_2" / f"{name}.npz", allow_pickle=False)
    predicted = model.predict(X)
    if predicted.dtype.kind in "fc":
        np.testing.assert_allclose(predicted, expected["predict"], rtol=1e-12, atol=0)
    else:
        np.testing.assert_array_equal(predicted, expected["predict"])
    if "predict_proba" in expected:
        np.testing.assert_allclose(
            model.predict_proba(X), expected["predict_proba"], rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize("name", ["warm_started", "classifier"])
def test_0_2_models_keep_training(name):
    model = _load(name, "pkl")
    data = inputs()
    X, y = (data["Xi"], data["yi"]) if name == "classifier" else (data["X"], data["y"])
    before = model.predict(X)
    model.partial_fit(X, y)
    assert model.n_iter_ == len(model.history_)
    assert not np.array_equal(model.predict(X), before)
