"""What a traced predict path took from its Task, checked before each call it serves.

A trace records one run of the Task's predict steps: which modules ran, with which
settings and hooks, and which tensors they read. Weights changed in place are read by
the graph, and predict runs every layer in eval mode on either path, but anything else a
user can do to a fitted model (replace a layer or a weight, load weights with
``assign=True``, prune or parametrize a layer, register a hook, change a layer's
setting, cast, enter ``torch.autocast``) makes the eager path compute something else.
:class:`ModelWatch` notices all of these, so that the call is answered eagerly and the
path traced again.
"""

from __future__ import annotations

import operator
import weakref
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from skflash.core.model import Task

#: torch's process-wide forward hooks (``register_module_forward_hook``...): the eager
#: path runs them, a trace does not.
_GLOBAL_HOOKS = (torch_module._global_forward_hooks, torch_module._global_forward_pre_hooks)
#: The attributes every module has: its mode (eval on both paths) and torch's tables,
#: which are watched by their contents.
_MODULE_TABLES = frozenset(vars(nn.Module()))
_item = dict.__getitem__
_STAGES = operator.attrgetter("data_pipeline.preprocess", "data_pipeline.postprocess")


def _entries(table: dict, keys: Any = None) -> list[tuple[dict, Any]]:
    return [(table, key) for key in (table if keys is None else keys)]


class ModelWatch:
    """A snapshot of what the eager predict of ``task`` runs, compared by identity.

    Each module is of the same class, holds the same submodules, weights and buffers, the
    same settings (its attributes besides torch's tables and its mode) and no forward
    hook; the weights keep their storage (``.data =`` gives new storage); the Task keeps
    its Preprocess and Postprocess, which keep their attributes (a layer or a stage may
    name in ``eval_ignores`` attributes its predict does not read, which a fit resets); no global
    forward hook is registered and autocast is off. The test takes a few microseconds:
    each part is one C-level pass over tuples made at the snapshot, no Python loop.
    """

    __slots__ = (
        "hooks",
        "keys",
        "modules",
        "owners",
        "sizes",
        "snapshot",
        "stages",
        "storage",
        "tables",
        "task",
        "tensors",
        "types",
    )

    def __init__(self, task: Task) -> None:
        modules = tuple(task.modules())
        # the Task holds its watch: a weak reference to it, so that no cycle keeps it alive
        self.task = weakref.ref(task)
        self.modules = modules[1:]
        self.stages = _STAGES(task)  # a fit may wrap them in a new DataPipeline
        plain = tuple(map(vars, self.stages))
        tables = [t for m in modules for t in (m._modules, m._parameters, m._buffers)]
        network = modules[1:]  # the Task's own attributes include Lightning's state
        settings = [vars(m) for m in network]
        entries = []
        for table in tables:
            entries += _entries(table)
        for stage, attributes in zip(self.stages, plain, strict=True):
            ignored = getattr(stage, "eval_ignores", frozenset())
            entries += _entries(attributes, [k for k in attributes if k not in ignored])
        for module, attributes in zip(network, settings, strict=True):
            # a layer may name attributes its eval-mode forward does not read
            ignored = _MODULE_TABLES | getattr(module, "eval_ignores", frozenset())
            entries += _entries(attributes, [k for k in attributes if k not in ignored])
        self.owners = tuple(owner for owner, _ in entries)
        self.keys = tuple(key for _, key in entries)
        self.snapshot = tuple(map(_item, self.owners, self.keys))
        # nothing added: a container runs every submodule it holds, and a layer given its
        # own ``forward`` runs that (an added weight or attribute is read by no one)
        self.tables = (*(m._modules for m in modules), *settings)
        self.sizes = tuple(map(len, self.tables))
        self.types = tuple(map(type, modules))  # parametrizing a layer changes its class
        self.hooks = (*_GLOBAL_HOOKS, *(h for m in modules for h in _hook_tables(m)))
        self.tensors = tuple(
            t for table in tables[1:] for t in table.values() if isinstance(t, torch.Tensor)
        )
        self.storage = tuple(map(torch.Tensor.data_ptr, self.tensors))

    def applies(self) -> bool:
        """Whether a trace taken now would repeat the eager path: no forward hook, no
        ``forward`` set on the Task itself, autocast off."""
        task = self.task()
        return not (task is None or any(self.hooks) or "forward" in vars(task) or _autocast())

    def unchanged(self) -> bool:
        """Whether the Task still computes what was traced (see the class docstring)."""
        task = self.task()
        if task is None or any(self.hooks) or "forward" in vars(task) or _autocast():
            return False
        try:
            current = tuple(map(_item, self.owners, self.keys))
        except KeyError:  # an attribute, layer or weight removed
            return False
        return (
            all(map(operator.is_, current, self.snapshot))
            and all(map(operator.is_, _STAGES(task), self.stages))
            and tuple(map(len, self.tables)) == self.sizes
            and (type(task), *map(type, self.modules)) == self.types
            and tuple(map(torch.Tensor.data_ptr, self.tensors)) == self.storage
        )


def _hook_tables(module: nn.Module) -> tuple[dict, dict]:
    return module._forward_hooks, module._forward_pre_hooks


def _autocast() -> bool:
    return torch.is_autocast_enabled("cpu")
