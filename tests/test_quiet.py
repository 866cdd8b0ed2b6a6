"""Quiet fits: Lightning's warnings silenced in the fitting thread only, and kept silenced
when another thread replaces the process's warning filters (scikit-learn's joblib tasks
do, at each task's start and end)."""

from __future__ import annotations

import threading
import warnings

import pytest
from pytorch_lightning.callbacks import Callback

from skflash import FlashRegressor
from skflash.estimators.quiet import FILTERS, keep_quiet, quiet_lightning


def _lightning_warns() -> list[str]:
    """A warning attributed to one of Lightning's modules, as raised there; what shows."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.resetwarnings()  # the list replaced, as scikit-learn's tasks do
        warnings.simplefilter("always", append=True)
        keep_quiet()
        warnings.warn_explicit(
            "a Lightning notice", UserWarning, "trainer.py", 1, module="pytorch_lightning.trainer"
        )
    return [str(w.message) for w in shown]


def test_quiet_silences_lightning_in_its_own_thread_only():
    inside, beside = [], []
    entered, done = threading.Event(), threading.Event()

    def other_thread() -> None:
        entered.wait()
        beside.extend(_lightning_warns())
        done.set()

    other = threading.Thread(target=other_thread)
    other.start()
    with quiet_lightning():
        entered.set()
        done.wait()
        inside.extend(_lightning_warns())
    other.join()
    assert inside == []
    assert beside == ["a Lightning notice"]  # another thread's own Lightning work


def test_filters_put_back_after_another_thread_replaced_the_list():
    with quiet_lightning():
        saved = warnings.filters
        warnings.filters = [f for f in saved if not any(f is ours for ours in FILTERS)]
        try:
            assert _lightning_warns() == []
        finally:
            warnings.filters = saved


def test_filters_leave_with_the_last_quiet_block():
    before = list(warnings.filters)
    with quiet_lightning():
        assert all(any(f is ours for f in warnings.filters) for ours in FILTERS)
    assert warnings.filters == before
    assert _lightning_warns() == ["a Lightning notice"]  # outside any quiet block


class ResetsWarningFilters(Callback):
    """Replaces the process's warning filters once the fit has started, as a search task
    starting in another thread does."""

    def setup(self, trainer, pl_module, stage):
        warnings.resetwarnings()
        warnings.simplefilter("always")


@pytest.mark.filterwarnings("always")
def test_a_fit_stays_silent_when_the_filters_are_replaced_meanwhile(diabetes, recwarn, capfd):
    reg = FlashRegressor(max_epochs=2, random_state=0, callbacks=[ResetsWarningFilters()])
    reg.fit(*diabetes)
    assert [str(w.message) for w in recwarn if "lightning" in w.filename] == []
    assert capfd.readouterr() == ("", "")


def test_copies_of_the_filters_made_elsewhere_match_nothing():
    with quiet_lightning():
        # scikit-learn's tasks copy the filters they find into their threads this way
        copies = [("ignore", entry[3].pattern) for entry in FILTERS]
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        for action, module in copies:
            warnings.filterwarnings(action, module=module)
        warnings.warn_explicit(
            "a Lightning notice", UserWarning, "trainer.py", 1, module="pytorch_lightning.trainer"
        )
    assert [str(w.message) for w in shown] == ["a Lightning notice"]
