"""Models saved by skflash 0.2 load and predict exactly as they did, and keep training.

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
    np.testing.assert_array_equal(model.predict(X), expected["predict"])
    if "predict_proba" in expected:
        np.testing.assert_array_equal(model.predict_proba(X), expected["predict_proba"])


@pytest.mark.parametrize("name", ["warm_started", "classifier"])
def test_0_2_models_keep_training(name):
    model = _load(name, "pkl")
    data = inputs()
    X, y = (data["Xi"], data["yi"]) if name == "classifier" else (data["X"], data["y"])
    before = model.predict(X)
    model.partial_fit(X, y)
    assert model.n_iter_ == len(model.history_)
    assert not np.array_equal(model.predict(X), before)
