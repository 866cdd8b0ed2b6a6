"""The parameters FlashRegressor and FlashClassifier share, declared once.

Each :class:`~skflash.estimators.parameters.Parameter` gives the default, what values are
accepted (checked at every fit) and the docstring entry; the estimators' signatures and
their Parameters sections are written from this table and their own parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from skflash.core.model import Task
from skflash.estimators.parameters import (
    Boolean,
    InstanceOf,
    Integer,
    ListOf,
    Options,
    Parameter,
    Real,
    SubclassOf,
)
from skflash.estimators.table_parameters import TABLE_PARAMETERS
from skflash.lightning_namespaces import classes_named

#: Every value ``Trainer(precision=...)`` accepts, plus None (train in the input's dtype).
PRECISIONS = (
    *(None, 64, 32, 16, "64", "32", "16", "bf16"),
    *("64-true", "32-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed"),
    *("transformer-engine", "transformer-engine-float16"),
)

_OPTIMIZER_HINT = (
    "Pass the optimizer's class or name and its arguments as optimizer__<arg> (e.g. "
    "optimizer=torch.optim.SGD, optimizer__momentum=0.9): an optimizer instance is bound "
    "to the parameters of another network, so nothing would train."
)
_RANDOM_STATE_HINT = "Use an integer to make fits reproducible."

_TASK_HINT = (
    "Pass the class of a skflash Task (e.g. the tutorial's RegressionTask), not an "
    "instance: the estimator builds it at each fit, with its arguments as task__<arg>."
)


def _lightning(path: str) -> Callable[[], tuple]:
    """Lightning's class at ``path`` in both namespaces (see
    :func:`~skflash.lightning_namespaces.classes_named`)."""
    return functools.partial(classes_named, path)


SHARED_PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "task",
        None,
        "skflash.Task class or None",
        (Options((None,)), SubclassOf(Task, "a skflash.Task class")),
        """
        A Task of your own (a subclass of :class:`skflash.Task`, such as the tutorial's
        ``RegressionTask``) to train instead of the built-in network. It keeps its own
        model, loss, optimizer, learning rate, scheduler, metrics and ``step``; its
        constructor gets the number of input features (as ``num_inputs``,
        ``num_features``...), of outputs (``num_outputs``...) or of classes
        (``num_classes``...) where it asks for them, and ``task__<arg>`` parameters for the
        rest. The estimator keeps validation, scaling, encoding, the Trainer, early
        stopping, history and pickling. ``backbone``, ``loss``, ``optimizer``,
        ``learning_rate``, ``weight_decay``, ``numeric_embedding``, ``n_ensemble`` (and
        ``label_smoothing``) then stay at their defaults, and ``lr_schedule`` does not
        apply (the Task's own scheduler runs, if it has one).
        """,
        _TASK_HINT,
    ),
    Parameter(
        "backbone",
        "mlp",
        "str, nn.Module class or nn.Module",
        (
            InstanceOf((str,), "a backbone name such as 'mlp'"),
            SubclassOf(nn.Module, "an nn.Module class"),
            InstanceOf((nn.Module,), "an nn.Module instance"),
        ),
        """
        A key of the backbone registry topped with a linear head: ``"mlp"`` (by default
        two hidden layers of 64 SiLU units, with dropout 0.1 on a table of more rows
        than a batch and up to 10,000; change them with ``backbone__hidden_sizes``,
        ``backbone__activation``, ``backbone__dropout``) or
        ``"linear"``; or a module class, built as ``cls(n_features, n_outputs, **backbone__)``;
        or a module instance, copied at each fit. A module is the whole network.
        """,
    ),
    Parameter(
        "optimizer",
        "adamw",
        "str or torch.optim.Optimizer class",
        (
            InstanceOf((str,), "an optimizer name such as 'adamw'"),
            SubclassOf(torch.optim.Optimizer, "a torch.optim.Optimizer class"),
        ),
        """
        A name such as ``"adam"``, ``"adamw"`` or ``"sgd"``, or a class; its arguments
        go in as ``optimizer__<arg>``. Every torch optimizer trains well with the
        defaults, except LBFGS, SparseAdam and Muon, which are refused.
        """,
        hint=_OPTIMIZER_HINT,
    ),
    Parameter(
        "learning_rate",
        "auto",
        'float or "auto"',
        (Options(("auto",)), Real(0.0, open_low=True)),
        """
        ``"auto"``: the rate measured to train well for the optimizer (1e-3 for AdamW,
        Adam, NAdam, RMSprop and Rprop; 3e-3 RAdam and Adamax; 1e-2 Adagrad and
        Adafactor; 0.1 SGD and ASGD; 1.0 Adadelta; torch's default for other classes);
        the Adam family's ten times that on a large table (see ``max_epochs``).
        """,
    ),
    Parameter(
        "weight_decay",
        "auto",
        'float or "auto"',
        (Options(("auto",)), Real(0.0)),
        """
        The main regulariser. ``"auto"`` shrinks the weights by 0.1% per step wherever
        the decay is decoupled (AdamW, Adafactor; Adam, NAdam and RAdam are switched to
        decoupled decay), i.e. ``weight_decay = 1e-3 / learning_rate``, and is off
        where it would be an L2 penalty (SGD, Adagrad, RMSprop...), whose right
        strength depends on the data. On a table of at most 10,000 rows with more than
        100 training rows per network input (one-hot and embedded categories and
        periodic numeric features counted by their width), the shrink is
        ``100 * inputs / rows`` of that: the more rows per weight, the less a prior is
        needed. A number is passed to the optimizer as
        its own ``weight_decay``, with torch's meaning.
        """,
    ),
    Parameter(
        "lr_schedule",
        "cosine",
        '{"cosine", None}',
        (Options(("cosine", None)),),
        """
        ``"cosine"`` anneals the learning rate to zero over ``max_epochs`` (smoother
        convergence); None keeps it constant.
        """,
    ),
    Parameter(
        "batch_size",
        "auto",
        'int or "auto"',
        (Integer(1), Options(("auto",))),
        """
        ``"auto"`` is ``min(200, n_samples)``; 1024 on a large table (``max_epochs``).
        """,
    ),
    Parameter(
        "max_epochs",
        "auto",
        'int or "auto"',
        (Integer(1), Options(("auto",))),
        """
        Passes over the training data (per ``fit``; ``partial_fit`` makes one).
        ``"auto"`` is 200 (at most 2,400 optimizer steps where ``batch_size`` is
        ``"auto"`` too: 120 epochs on 4,000 rows), and 28 on a large table (over 10,000
        training rows), which the built-in network trains in 1024-row batches at ten
        times the Adam family's rate where those are ``"auto"`` too: as accurate or more
        in a fifth to a tenth of the time (diamonds, CPS1988, nlswork).
        """,
    ),
    Parameter(
        "early_stopping",
        False,
        'bool or "auto"',
        (Boolean(), Options(("auto",))),
        """
        Hold out ``validation_fraction`` of the training data, stop when its loss has
        not improved for ``patience`` epochs, and keep the best epoch's weights.
        ``"auto"`` does so only when the training data has more than 10,000 rows.
        """,
    ),
    Parameter(
        "validation_fraction",
        0.1,
        "float",
        (Real(0.0, 1.0, open_low=True, open_high=True),),
        """
        The fraction of the training rows held out to validate, with ``early_stopping``.
        """,
    ),
    Parameter(
        "patience",
        10,
        "int",
        (Integer(1),),
        """
        Epochs without improvement of the validation loss before ``early_stopping`` stops.
        """,
    ),
    Parameter(
        "standardize_inputs",
        True,
        'bool or "robust"',
        (Boolean(), Options(("robust",))),
        """
        Centre and scale each numeric feature with the (weighted) training statistics:
        mean and standard deviation (True); or median and interquartile range, then a
        smooth clip to (-3, 3) that keeps outliers from dominating (``"robust"``).
        """,
    ),
    Parameter(
        "numeric_embedding",
        "auto",
        '{"auto", "periodic", None}',
        (Options(("auto", "periodic", None)),),
        """
        ``"periodic"``: the registry backbones see each numeric feature ``x`` as
        ``[x, W cos(2 pi f x + phase) + b]`` with 16 learned frequencies and 3 learned
        values (:class:`~skflash.core.tabular_input.PeriodicEmbedding`), which helps on
        functions of sharp or periodic shape at about the cost of a 4x wider input.
        ``"auto"``: periodic for the ``"mlp"`` backbone's ``fit`` on a table of at most
        10,000 rows with at least 100 training rows per network input (one-hot and
        embedded categories counted by their width), where it lifted mlc_churn's ROC AUC
        from 0.908 to 0.922 and friedman3's R² from 0.886 to 0.898; otherwise None
        (fewer rows per input, as diabetes and digits; large tables; ``partial_fit``).
        """,
    ),
    Parameter(
        "n_ensemble",
        "auto",
        'int or "auto"',
        (Options(("auto",)), Integer(1)),
        """
        Train this many networks at once, side by side in one vectorised pass (the
        ``"mlp"`` and ``"linear"`` backbones; they share the input layer), each on its
        own loss, and average their predictions (probabilities for a classifier). Costs
        about ``n_ensemble`` times the arithmetic of one network per step. ``"auto"``:
        2 for FlashRegressor with those backbones (in 5-fold tests it lifted friedman3's
        R² from 0.841 to 0.851, diabetes' from 0.490 to 0.495 and ames' from 0.887 to
        0.894, at up to 1.7x the fit time), otherwise 1 (with label smoothing, 2 or 4
        members made FlashClassifier no better).
        """,
    ),
    *TABLE_PARAMETERS,
    Parameter(
        "random_state",
        None,
        "int, RandomState instance or None",
        (
            Options((None,)),
            Integer(0),
            InstanceOf((np.random.RandomState,), "a numpy RandomState"),
        ),
        """
        Seeds the validation split, the initial weights and the shuffling. The global
        random state of numpy and torch is left alone when it is an integer.
        """,
        hint=_RANDOM_STATE_HINT,
    ),
    Parameter(
        "accelerator",
        "cpu",
        "str",
        (
            InstanceOf((str,), "an accelerator name such as 'cpu' or 'gpu'"),
            InstanceOf(_lightning("accelerators.Accelerator"), "a Lightning Accelerator"),
        ),
        """
        Lightning accelerator: ``"cpu"``, ``"gpu"``, ``"auto"``...
        """,
    ),
    Parameter(
        "devices",
        "auto",
        "int, str or list",
        (
            Integer(-1),
            InstanceOf((str,), "a string such as 'auto' or '0,1'"),
            ListOf(int, "a list of device indices"),
        ),
        """
        Lightning devices. ``N > 1`` trains in N processes, each taking
        ``batch_size / N`` rows of every batch, so the model matches one process's; the
        processes are forked where that is safe (CPU, not macOS) and spawned otherwise,
        never by re-running the script. ``trainer__strategy`` chooses another.
        """,
    ),
    Parameter(
        "precision",
        None,
        "str or int",
        (Options(PRECISIONS),),
        """
        Any Lightning precision except ``"transformer-engine"`` (which needs an NVIDIA
        GPU): ``"64-true"`` trains in float64, ``"bf16-mixed"``/``"16-mixed"`` under
        autocast, ``"bf16-true"``/``"16-true"`` with half-precision weights (under
        ``"16-true"``, an optimizer's ``eps`` of less than 1e-4 becomes 1e-4, which
        float16 holds; route ``optimizer__eps`` to choose another). None:
        float32 input trains in float32; float64 input trains in float64 (exact, as
        scikit-learn's MLP) while an epoch is under 1e7 multiply-adds (training rows x
        trainable parameters, about a thousand rows) on the CPU, and in float32 beyond
        that or on an accelerator (float64 costs 1.3x-2x the time). Predictions come back in the
        input's dtype.
        """,
    ),
    Parameter(
        "num_threads",
        "auto",
        'int, "auto" or None',
        (Options(("auto", None)), Integer(1)),
        """
        CPU threads torch uses in ``fit`` and ``predict``. ``"auto"``: one when a step
        is small (under 4 million multiply-adds: trainable parameters x batch rows),
        where more threads gain nothing on a quiet machine and slow a busy one several
        times over; otherwise torch's own setting (in a joblib or Dask worker, what the
        worker was given). None leaves torch's setting alone. The caller's setting is
        restored afterwards.
        """,
    ),
    Parameter(
        "callbacks",
        None,
        "list of Lightning callbacks",
        (
            Options((None,)),
            ListOf(_lightning("callbacks.Callback"), "a list of Lightning callbacks"),
        ),
        """
        Copied into each fit.
        """,
    ),
    Parameter(
        "verbose",
        0,
        "int",
        (Options((0, 1, 2, False, True)),),
        """
        0: silent; 1: one live progress bar over the epochs with the latest losses
        (``tqdm.auto``: on stderr in a terminal, a widget in a notebook; elsewhere, as in
        a log file, one summary line when the fit ends); 2:
        Lightning's own progress bar, model summary and messages. No files are written
        at any level unless a logger (``trainer__logger``) or a ModelCheckpoint is passed.
        """,
    ),
    Parameter(
        "warm_start",
        False,
        "bool",
        (Boolean(),),
        """
        Make ``fit`` continue training the fitted network instead of starting anew: the
        optimizer's state carries on, and a fresh learning-rate schedule runs over
        ``max_epochs``. ``partial_fit`` also keeps the optimizer's state, and trains at
        the constant ``learning_rate``.
        """,
    ),
)


KWARGS_DOC = """
Routed parameters: ``backbone__<arg>`` (e.g. ``backbone__hidden_sizes``),
``optimizer__<arg>`` (e.g. ``optimizer__weight_decay``) and ``trainer__<arg>``
(any ``pytorch_lightning.Trainer`` argument).
"""

#: Attributes every fitted estimator has, after its own in the docstring.
SHARED_ATTRIBUTES = """
task_ : RegressionTask or ClassificationTask
    The trained Lightning module.
history_ : list of dict
    Per epoch: ``epoch``, ``train_loss``, and ``val_loss`` when early stopping.
n_iter_ : int
    Epochs trained.
best_epoch_ : int or None
    The epoch whose weights were kept by early stopping.
n_features_in_ : int
feature_names_in_ : ndarray of str
    Defined when X has string column names.
"""
