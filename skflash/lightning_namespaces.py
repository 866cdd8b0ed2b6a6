"""Lightning's two packages, ``pytorch_lightning`` and ``lightning.pytorch``.

They hold the same code as distinct classes, and one Trainer refuses the other's objects
(a ``lightning.pytorch`` callback is no ``pytorch_lightning`` Callback to it). skflash is
written against ``pytorch_lightning``; a fit whose callbacks, logger, strategy,
accelerator or plugins come from ``lightning.pytorch`` trains with skflash's Lightning
classes (Task, DataModule, Trainer, callbacks) built on ``lightning.pytorch`` instead.

Those classes come from the same source files, loaded a second time as
``skflash._lightning_pytorch.<module>`` with ``pytorch_lightning`` read as
``lightning.pytorch`` (and ``lightning_fabric`` as ``lightning.fabric``), as the
``lightning`` package itself is made from ``pytorch_lightning``'s source. Only
:data:`MIRRORED` modules are loaded twice (every other module is shared as it is), and
within them what needs no namespace is put back to the original object (see
:func:`_shared`): a Preprocess class, an exception or a lock is the same object under
both namespaces.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import re
import sys
import threading
import types
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the estimators' parameters take, from either package
    from typing import TypeAlias

    import lightning.pytorch as unified
    import pytorch_lightning as classic

    LightningCallback: TypeAlias = "classic.Callback | unified.Callback"
    LightningAccelerator: TypeAlias = (
        "classic.accelerators.Accelerator | unified.accelerators.Accelerator"
    )

CLASSIC = "pytorch_lightning"
UNIFIED = "lightning.pytorch"
NAMESPACES = (CLASSIC, UNIFIED)

#: The modules that define or build Lightning objects, in the order they import.
MIRRORED = (
    "skflash.core.fused_steps",
    "skflash.core.model",
    "skflash.core.finetuning",
    "skflash.core.trainer",
    "skflash.data.data_module",
    "skflash.data.numpy_data",
    "skflash.tasks.tabular",
    "skflash.tasks.regression",
    "skflash.tasks.classification",
    "skflash.estimators.callbacks",
    "skflash.estimators.assembly",
    "skflash.estimators.training",
)
_PREFIX = "skflash._lightning_pytorch"
_RENAMED = [
    (re.compile(r"\bpytorch_lightning\b"), "lightning.pytorch"),
    (re.compile(r"\blightning_fabric\b"), "lightning.fabric"),
    (
        re.compile(r"\bskflash\.(" + "|".join(re.escape(m[8:]) for m in MIRRORED) + r")\b"),
        _PREFIX + r".\1",
    ),
]
_lock = threading.RLock()


def _namespace_of_class(cls: type) -> str | None:
    for klass in cls.__mro__:
        module = klass.__module__
        if module.startswith(("lightning.pytorch", "lightning.fabric")):
            return UNIFIED
        if module.startswith(("pytorch_lightning", "lightning_fabric")):
            return CLASSIC
    return None


def namespace_of(objects: Iterable[Any], default: str = CLASSIC) -> str:
    """The Lightning namespace that ``objects`` (and the lists among them) come from:
    ``default`` (``pytorch_lightning``) when none is Lightning's; objects of both are
    refused, as one Trainer cannot take both."""
    found: dict[str, str] = {}
    for value in objects:
        for one in value if isinstance(value, (list, tuple)) else [value]:
            namespace = None if inspect.isclass(one) else _namespace_of_class(type(one))
            if namespace is not None:
                found.setdefault(namespace, type(one).__qualname__)
    if len(found) > 1:
        raise ValueError(
            f"The Lightning objects passed come from both pytorch_lightning "
            f"({found[CLASSIC]}) and lightning.pytorch ({found[UNIFIED]}), which one "
            "Trainer cannot mix. Import all of them from one of the two."
        )
    return next(iter(found), default)


def task_namespace(task: Any) -> str:
    """The Lightning namespace a fitted Task was built on."""
    return _namespace_of_class(type(task)) or CLASSIC


def module_in(name: str, namespace: str) -> types.ModuleType:
    """skflash's module ``name`` (such as ``"skflash.estimators.training"``) with its
    Lightning classes from ``namespace``."""
    if namespace == CLASSIC or name not in MIRRORED:
        return importlib.import_module(name)
    if namespace != UNIFIED:
        raise ValueError(f"Unknown Lightning namespace {namespace!r}; use one of {NAMESPACES}.")
    return importlib.import_module(f"{_PREFIX}.{name[8:]}")


def in_namespace(cls: type, namespace: str) -> type:
    """``cls`` (a class of a module in :data:`MIRRORED`) built on ``namespace``'s classes."""
    return getattr(module_in(cls.__module__, namespace), cls.__qualname__)


def classes_named(path: str) -> tuple[type, ...]:
    """Lightning's class at ``path`` (``"callbacks.Callback"``) in each namespace already
    imported: a check against them never imports a namespace the user did not."""
    found = []
    for namespace in NAMESPACES:
        if namespace in sys.modules:
            module, _, name = path.rpartition(".")
            found.append(getattr(importlib.import_module(f"{namespace}.{module}"), name))
    return tuple(found)


class _MirrorLoader(importlib.abc.Loader):
    """Runs an skflash module's source with the other namespace's names."""

    def __init__(self, original: str | None) -> None:
        self.original = original

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        if self.original is None:  # one of the mirror's packages: nothing in it
            return
        source_module = importlib.import_module(self.original)
        spec = importlib.util.find_spec(self.original)
        source = spec.loader.get_source(self.original)
        for pattern, replacement in _RENAMED:
            source = pattern.sub(replacement, source)
        module.__file__ = source_module.__file__
        exec(compile(source, source_module.__file__, "exec"), module.__dict__)
        _share_with(module, source_module)


def _shared(value: Any) -> bool:
    """Whether the original of ``value`` serves both namespaces: Preprocess and
    Postprocess classes (their identity is saved in checkpoints), exceptions, data
    classes and locks. The rest (Lightning's subclasses, the mixins and functions that
    check Lightning's types) stays the copy."""
    from skflash.data.process import Postprocess, Preprocess

    if inspect.isclass(value):
        if _namespace_of_class(value) is not None:
            return False
        return issubclass(value, (Preprocess, Postprocess, BaseException)) or (
            hasattr(value, "__dataclass_fields__")
        )
    return isinstance(value, (type(threading.Lock()), type(threading.RLock())))


def _share_with(module: types.ModuleType, original: types.ModuleType) -> None:
    """Put the original's objects back in ``module`` where the namespace does not matter."""
    for name, value in list(vars(module).items()):
        if not name.startswith("__") and hasattr(original, name) and _shared(value):
            setattr(module, name, getattr(original, name))


class _MirrorFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != _PREFIX and not fullname.startswith(_PREFIX + "."):
            return None
        original = "skflash" + fullname[len(_PREFIX) :]
        if original in MIRRORED:
            return importlib.machinery.ModuleSpec(fullname, _MirrorLoader(original))
        if any(m.startswith(original + ".") for m in MIRRORED):
            return importlib.machinery.ModuleSpec(fullname, _MirrorLoader(None), is_package=True)
        return None


def install() -> None:
    """Make the ``lightning.pytorch`` copies importable by name (pickles, spawned ranks);
    called by ``import skflash``. Nothing is loaded until a fit asks for them."""
    with _lock:
        if not any(isinstance(f, _MirrorFinder) for f in sys.meta_path):
            sys.meta_path.append(_MirrorFinder())
