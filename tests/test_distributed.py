"""Several devices: Lightning's own per-batch loop, with each process on its share of data.

Run in a fresh interpreter: the ``ddp_fork`` strategy forks the process, which must not
be the test runner's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from pytorch_lightning.callbacks import Callback
    import skflash as flash
    from skflash.data.numpy_data import NumpyDataModule
    from skflash.tasks import RegressionTask

    class Seen(Callback):
        rows = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.rows += len(batch[0])

        def on_train_end(self, trainer, pl_module):
            path = os.path.join(sys.argv[1], f"rank{trainer.global_rank}.json")
            with open(path, "w") as f:
                json.dump({"rows": self.rows, "fused": pl_module.fuses_steps()}, f)

    X = np.random.default_rng(0).normal(size=(64, 4))
    dm = NumpyDataModule.from_xy_dataset(X, X.sum(1), test_size=None, batch_size=8)
    dm.fused_steps = True  # offered; two devices must decline it
    trainer = flash.Trainer(
        max_epochs=2, accelerator="cpu", devices=2, strategy="ddp_fork", callbacks=[Seen()],
        logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(RegressionTask(4), datamodule=dm)
    """
)


def test_two_processes_each_train_on_half_the_data(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    subprocess.run(
        [sys.executable, str(script), str(tmp_path)], check=True, capture_output=True, timeout=120
    )
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks == [{"rows": 2 * 32, "fused": False}] * 2  # 2 epochs of 32 rows each


ESTIMATOR_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from sklearn.datasets import load_diabetes
    from skflash import FlashRegressor

    if __name__ == "__main__":
        X, y = load_diabetes(return_X_y=True)
        single = FlashRegressor(max_epochs=30, random_state=0).fit(X, y)
        out = {"single": single.score(X, y)}
        for strategy in ("ddp_spawn", "ddp_fork"):
            reg = FlashRegressor(
                max_epochs=30, devices=2, trainer__strategy=strategy, random_state=0
            ).fit(X, y)
            out[strategy] = {
                "score": reg.score(X, y),
                "n_iter": reg.n_iter_,
                "epochs": [row["epoch"] for row in reg.history_],
                "finite": all(row["train_loss"] > 0 for row in reg.history_),
            }
        from sklearn.model_selection import GridSearchCV

        search = GridSearchCV(
            FlashRegressor(max_epochs=5, devices=2, trainer__strategy="ddp_fork"),
            {"learning_rate": [1e-3, 1e-2]},
            cv=2,
        ).fit(X, y)
        out["search"] = search.best_estimator_.n_iter_
        print(json.dumps(out))
    """
)


def test_estimator_on_two_processes_returns_its_history_and_quality(tmp_path):
    script = tmp_path / "estimator.py"
    script.write_text(ESTIMATOR_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], check=True, capture_output=True, text=True, timeout=240
    )
    # quiet, the ranks too: not even Lightning's banner while the processes connect
    assert len(done.stdout.strip().splitlines()) == 1 and not done.stderr.strip()
    out = json.loads(done.stdout)
    for strategy in ("ddp_spawn", "ddp_fork"):
        result = out[strategy]
        assert result["n_iter"] == 30 and result["epochs"] == list(range(30))
        assert result["finite"]
        assert result["score"] > out["single"] - 0.05  # the one-process quality
    assert out["search"] == 5  # inside GridSearchCV (and its refit) too


def _multi_device_fit() -> str:
    from sklearn.datasets import load_diabetes

    from skflash import FlashRegressor

    X, y = load_diabetes(return_X_y=True)
    try:
        FlashRegressor(max_epochs=1, devices=2, trainer__strategy="ddp_spawn").fit(X, y)
    except ValueError as error:
        return str(error)
    return "fitted"


def test_multi_device_fit_in_a_daemonic_worker_gets_a_clear_error():
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        message = pool.apply(_multi_device_fit)
    assert "daemonic worker" in message and "devices=1" in message
