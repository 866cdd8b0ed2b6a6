"""Several devices: Lightning's own per-batch loop, with each process on its share of data.

The fits run in a fresh interpreter: they fork the process, which should not be the test
runner's own (its threads and open files would be copied).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from skflash import FlashRegressor
from skflash.estimators import processes

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
    import json, os, sys
    from pytorch_lightning.callbacks import Callback
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import GridSearchCV
    from skflash import FlashRegressor

    class Batches(Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            self.sizes = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.sizes.append(len(batch[0]))

        def on_train_end(self, trainer, pl_module):
            with open(os.path.join(sys.argv[1], f"rank{trainer.global_rank}.json"), "w") as f:
                json.dump(self.sizes, f)

    if __name__ == "__main__":
        X, y = load_diabetes(return_X_y=True)
        single = FlashRegressor(max_epochs=30, random_state=0).fit(X, y)
        out = {"single": single.score(X, y)}
        runs = {
            "devices": {"callbacks": [Batches()]},  # the strategy skflash chooses
            "ddp_spawn": {"trainer__strategy": "ddp_spawn"},
            "ddp_fork": {"trainer__strategy": "ddp_fork"},
        }
        for name, kwargs in runs.items():
            reg = FlashRegressor(max_epochs=30, devices=2, random_state=0, **kwargs).fit(X, y)
            out[name] = {
                "score": reg.score(X, y),
                "n_iter": reg.n_iter_,
                "epochs": [row["epoch"] for row in reg.history_],
                "finite": all(row["train_loss"] > 0 for row in reg.history_),
            }
        search = GridSearchCV(
            FlashRegressor(max_epochs=5, devices=2, random_state=0),
            {"learning_rate": [1e-3, 1e-2]},
            cv=2,
            error_score="raise",
        ).fit(X, y)
        out["search"] = search.best_estimator_.n_iter_
        print(json.dumps(out))
    """
)


def test_devices_train_with_the_meaning_of_one_process(tmp_path):
    """devices=2 forks two processes, each taking half of every batch: the steps per
    epoch, the schedule and the result are those of one process, with the full history,
    also through the named strategies and inside GridSearchCV."""
    script = tmp_path / "estimator.py"
    script.write_text(ESTIMATOR_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # quiet, the ranks too: not even Lightning's banner while the processes connect
    assert len(done.stdout.strip().splitlines()) == 1 and not done.stderr.strip()
    out = json.loads(done.stdout)
    for name in ("devices", "ddp_spawn", "ddp_fork"):
        result = out[name]
        assert result["n_iter"] == 30 and result["epochs"] == list(range(30))
        assert result["finite"]
        assert abs(result["score"] - out["single"]) < 0.02, (name, result, out["single"])
    # 442 rows, batch_size "auto" = 200: one process steps through 200, 200, 42 rows;
    # each of two takes its half (the sampler pads 442 to an even 2 x 221)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks == [[100, 100, 21]] * 2
    assert out["search"] == 5  # inside GridSearchCV (and its refit) too


def _multi_device_fit() -> str:
    from sklearn.datasets import load_diabetes

    from skflash import FlashRegressor

    X, y = load_diabetes(return_X_y=True)
    try:
        FlashRegressor(max_epochs=1, devices=2).fit(X, y)
    except ValueError as error:
        return str(error)
    return "fitted"


def test_multi_device_fit_in_a_daemonic_worker_gets_a_clear_error():
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        message = pool.apply(_multi_device_fit)
    assert "daemonic worker" in message and "devices=1" in message


def _trainer(**kwargs):
    from skflash import Trainer

    return Trainer(accelerator="cpu", devices=2, logger=False, **kwargs)


def test_processes_fork_where_safe_and_spawn_elsewhere(monkeypatch):
    trainer = _trainer()
    assert processes.local_settings(trainer, {}, "FlashRegressor")["strategy"] == "ddp_fork"
    monkeypatch.setattr(processes.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    settings = processes.local_settings(trainer, {}, "FlashRegressor")
    assert settings["strategy"] == "ddp_spawn"
    assert isinstance(settings["plugins"][0], processes.OwnPort)
    # the user's strategy is kept, with a port of its own; their plugins are left alone
    assert list(processes.local_settings(trainer, {"strategy": "ddp_fork"}, "R")) == ["plugins"]
    assert processes.local_settings(trainer, {"strategy": "ddp_fork", "plugins": []}, "R") == {}


def test_each_fit_connects_its_processes_on_a_port_of_its_own(monkeypatch):
    monkeypatch.setenv("MASTER_PORT", "29500")  # what an earlier fit's launcher left
    ports = {processes.OwnPort().main_port for _ in range(3)}
    assert 29500 not in ports and len(ports) > 1


def test_processes_started_by_a_launcher_are_joined(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")  # as torchrun or srun set it, with the rest
    assert processes.local_settings(_trainer(), {}, "FlashRegressor") == {}


def test_several_nodes_without_a_launcher_get_what_to_run():
    with pytest.raises(ValueError, match=r"torchrun.*srun"):
        processes.local_settings(_trainer(num_nodes=2), {}, "FlashRegressor")


def test_global_batch_is_shared_by_the_processes(diabetes):
    assert processes.process_batch_size(200, 200, 2) == 100
    assert processes.process_batch_size(64, 64, 4) == 16
    assert processes.process_batch_size("auto", 101, 2) == 51  # a small table's one batch
    X, y = diabetes
    with pytest.raises(ValueError, match=r"batch_size=101 cannot be shared evenly.*100"):
        FlashRegressor(max_epochs=1, devices=2, batch_size=101).fit(X, y)


def test_an_interrupt_of_the_main_process_alone_ends_the_fits_processes():
    # A notebook's interrupt reaches the kernel only: the started ranks must not be left
    # waiting on each other (the interpreter would hang at exit, joining them).
    script = textwrap.dedent(
        """
        import multiprocessing, os, signal, threading
        import numpy as np
        from skflash import FlashRegressor

        # Ctrl+C live, as in a kernel (a shell starts background jobs with SIGINT ignored)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        X = np.random.default_rng(0).normal(size=(2000, 8))
        reg = FlashRegressor(devices=2, max_epochs=100000, batch_size=64)
        threading.Timer(5, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            reg.fit(X, X.sum(1))
        except KeyboardInterrupt:
            print("interrupted", multiprocessing.active_children())
        """
    )
    # its own process group: a hang must not leave training ranks behind
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("the interrupted fit did not end within 120 s")
    assert process.returncode == 0, stderr[-2000:]
    assert "interrupted []" in stdout


def test_an_interrupt_while_the_processes_start_ends_those_already_running(monkeypatch):
    # The launcher lists its processes once all have started: an interrupt that lands
    # before then must end the ones already running, and leave the caller's own alone.
    import multiprocessing
    import time

    import pytorch_lightning as pl

    from skflash.core.trainer import Trainer

    fork = multiprocessing.get_context("fork")
    callers = fork.Process(target=time.sleep, args=(60,))
    callers.start()
    started = []

    def interrupted_while_starting(self, *args, **kwargs):
        started.append(fork.Process(target=time.sleep, args=(60,)))
        started[-1].start()
        raise KeyboardInterrupt

    monkeypatch.setattr(pl.Trainer, "fit", interrupted_while_starting)
    trainer = Trainer(
        accelerator="cpu", devices=2, strategy="ddp_fork", logger=False, enable_progress_bar=False
    )
    try:
        with pytest.raises(KeyboardInterrupt):
            trainer.fit(None)
        assert not started[0].is_alive()
        assert callers.is_alive()
    finally:
        callers.kill()
        callers.join()


FAILING_SCRIPT = textwrap.dedent(
    """
    import json
    from pytorch_lightning.callbacks import Callback
    from sklearn.datasets import load_diabetes
    from skflash import FlashRegressor

    class ScriptsOwnError(Exception):
        pass

    class FailsOnRankOne(Callback):
        def __init__(self, error):
            self.error = error

        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.global_rank == 1:  # rank 0 is left waiting, and must be ended
                raise self.error

    def failure(**kwargs):
        reg = FlashRegressor(max_epochs=3, random_state=0, **kwargs)
        try:
            reg.fit(X, y)
        except Exception as error:
            return {
                "type": type(error).__name__,
                "message": str(error),
                "cause": type(error.__cause__).__name__,
                "fitted": hasattr(reg, "history_"),
            }
        return "fitted"

    if __name__ == "__main__":
        X, y = load_diabetes(return_X_y=True)
        diverging = dict(optimizer="sgd", learning_rate=1e6)
        out = {
            "one": failure(**diverging),
            "two": failure(devices=2, **diverging),
            "callback": failure(devices=2, callbacks=[FailsOnRankOne(RuntimeError("no"))]),
            "spawned": failure(
                devices=2,
                trainer__strategy="ddp_spawn",
                callbacks=[FailsOnRankOne(ScriptsOwnError("the script's own"))],
            ),
        }
        print(json.dumps(out))
    """
)


def test_an_error_in_a_process_reaches_the_caller_as_itself(tmp_path):
    """An error raised in a started process is raised again as itself (torch's
    ProcessRaisedException, with the process's traceback, as its cause), quietly, and
    the estimator stays unfitted; a class of the script's own too, through spawn."""
    script = tmp_path / "failing.py"
    script.write_text(FAILING_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], check=True, capture_output=True, text=True, timeout=300
    )
    assert not done.stderr.strip()  # not even torch's "Terminating process" warning
    out = json.loads(done.stdout)
    one, two = out["one"], out["two"]
    assert one["type"] == two["type"] == "TrainingDivergedError"
    assert two["message"] == one["message"] and two["message"].startswith("Training diverged")
    assert two["cause"] == "ProcessRaisedException"
    assert out["callback"]["type"] == "RuntimeError" and out["callback"]["message"] == "no"
    assert out["spawned"]["type"] == "ScriptsOwnError"
    assert out["spawned"]["message"] == "the script's own"
    assert not any(result["fitted"] for result in out.values())


class _NeedsTwo(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


def _sent_back(error: BaseException, cause: BaseException | None = None) -> str:
    """The traceback text torch sends back for ``error`` raised in a process."""
    import traceback

    try:
        try:
            raise cause if cause is not None else error
        except BaseException as first:
            if cause is None:
                raise
            raise error from first
    except BaseException:
        return traceback.format_exc()


def test_errors_are_rebuilt_from_the_traceback_torch_sends_back():
    from torch.multiprocessing.spawn import ProcessRaisedException

    from skflash.estimators.callbacks import TrainingDivergedError

    def rebuilt(error, cause=None):
        return processes.original_error(ProcessRaisedException(_sent_back(error, cause), 1, 7))

    diverged = rebuilt(TrainingDivergedError("Training diverged at epoch 3"))
    assert type(diverged) is TrainingDivergedError
    assert str(diverged) == "Training diverged at epoch 3"
    two_lines = rebuilt(ValueError("first\nsecond"), cause=KeyError("k"))
    assert type(two_lines) is ValueError and str(two_lines) == "first\nsecond"
    assert type(rebuilt(RuntimeError())) is RuntimeError
    assert rebuilt(_NeedsTwo(3, "why")) is None  # its class needs more than a message
