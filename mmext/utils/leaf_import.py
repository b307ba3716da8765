"""Import one module of a package without running the package's ``__init__``."""
import importlib
import importlib.machinery
import sys
import types
from typing import List


def import_leaf(name: str, skip: str) -> types.ModuleType:
    """Import module ``name`` without executing the ``__init__`` of package
    ``skip`` and of the packages between it and ``name``.

    ``mmdet.models``' ``__init__`` imports every detector, and through
    ``mmdet.utils`` seaborn and scipy.stats: 2-3 s before a tool that reads
    an annotation file can build one ``AnchorGenerator``. Here those
    packages are stand-ins (a bare module with the real ``__path__``)
    while ``name`` is executed, and are removed again afterwards; ``name``
    itself stays in ``sys.modules``, so a later ordinary import of the
    package (which imports ``name`` by a relative import) finds it there
    and does not execute it a second time (its registry decorators run
    exactly once). When ``skip`` is already imported this is a plain
    import.

    Args:
        name: Dotted module name, e.g.
            ``'mmdet.models.task_modules.prior_generators.anchor_generator'``.
        skip: A package above ``name`` whose ``__init__`` is not run, e.g.
            ``'mmdet.models'``; its own parent is imported normally.

    Returns:
        The module ``name``.

    Raises:
        ImportError: ``skip`` is not a package above ``name``, or a module
            on the way cannot be found.
    """
    if not name.startswith(skip + '.'):
        raise ImportError(f'{skip!r} is not a package above {name!r}')
    if name in sys.modules or skip in sys.modules:
        return importlib.import_module(name)
    parent, _, first = skip.rpartition('.')
    search_path = importlib.import_module(parent).__path__ if parent else None
    stand_ins: List[str] = []
    try:
        for part in [first] + name[len(skip) + 1:].split('.')[:-1]:
            package = f'{parent}.{part}' if parent else part
            spec = importlib.machinery.PathFinder.find_spec(part, search_path)
            if spec is None or spec.submodule_search_locations is None:
                raise ImportError(f'no package {package!r} on {search_path}')
            stand_in = types.ModuleType(package)
            stand_in.__path__ = list(spec.submodule_search_locations)
            sys.modules[package] = stand_in
            stand_ins.append(package)
            parent, search_path = package, stand_in.__path__
        return importlib.import_module(name)
    finally:
        for package in stand_ins:
            sys.modules.pop(package, None)
