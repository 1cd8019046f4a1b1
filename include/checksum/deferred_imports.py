"""Modules GX imports but a checksum never uses, loaded on their first use instead of at GX's import.

GX imports every expectation it ships when it is imported, and with them ``scipy.stats`` (the
KL-divergence expectation) and ``altair`` (charts of distributions): about 0.9 s of the 2.7 s that
``import great_expectations`` takes on a 2-core machine, in every checksum task, for expectations no suite
of ours has. :func:`defer` puts a stand-in under the module's name; the first attribute read from it
(a function, a class; not ``__file__`` or ``__path__``) imports the real module, puts it in its place,
and answers from it. A submodule imported directly is imported alone, and the package takes it from
``sys.modules`` when it loads. Nothing is changed when the module is already imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


class _Deferred(types.ModuleType):
    """Stands in for a module not imported yet; any attribute it lacks imports the real module."""

    def __getattr__(self, name: str):
        return getattr(_real(self), name)


def defer(*names: str) -> None:
    """Import each of ``names`` only when something first reads an attribute of it."""
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)  # imports the parent package (scipy's is light), not the module
        if spec is None:
            continue
        stand_in = _Deferred(name)
        stand_in.__spec__ = spec  # what the import system reads of a module it finds in sys.modules
        # What inspect.getmodule reads of every module in sys.modules: GX calls inspect.stack() whenever it
        # turns a Decimal metric (PostgreSQL's sum) into a float, which would otherwise load them all.
        stand_in.__file__ = spec.origin
        if spec.submodule_search_locations is not None:
            # Read by an import of a submodule: were it to load the package, whose own imports take that
            # submodule, the import under way would then run the submodule a second time.
            stand_in.__path__ = list(spec.submodule_search_locations)
        sys.modules[name] = stand_in


def _real(stand_in: _Deferred) -> types.ModuleType:
    """The module itself, imported now if need be (two threads get one import: Python locks it)."""
    name = stand_in.__name__
    if sys.modules.get(name) is stand_in:
        del sys.modules[name]
    real = importlib.import_module(name)
    parent, _, child = name.rpartition(".")
    if parent and getattr(sys.modules.get(parent), child, None) is stand_in:
        setattr(sys.modules[parent], child, real)
    return real
