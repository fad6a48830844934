"""A network the registry does not know, named as ``package.module:callable``.

The convention of ``torchrun``'s and ``uvicorn``'s application strings: the part before the
colon is an importable module, the part after it an attribute path inside it (dots allowed:
``mypkg.models:Factory.small``).  The callable is called with no arguments and must return
an ``nn.Module``.  As uvicorn does, the current working directory is searched first, so
``--model mymodels:make_net`` finds ``./mymodels.py`` (and the modules it imports from its
folder).  Unlike uvicorn, the folder is on ``sys.path`` only while the named module is
imported and its callable runs (:func:`_cwd_first`): a module imported later by the
toolkit (pandas, matplotlib, tabulate, ...) never comes from a file in that folder that
nobody named.

Every failure (malformed string, module not importable, attribute missing, not callable,
the call raising, something other than a module returned, the module or the call ending
the process with ``sys.exit``) is one :class:`~ttq_core.errors.ConfigError` line.
Importing the module runs its code, as ``python -c 'import mypkg.models'`` would: name
only code you trust.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from typing import Callable, Iterator

from torch import nn

from .errors import ConfigError

_SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def resolve_callable(spec: str) -> Callable[[], nn.Module]:
    """The object ``spec`` (``module:attr``) names, checked to be callable."""
    if not isinstance(spec, str) or not _SPEC.match(spec):
        raise ConfigError(f"--model {spec!r} is not of the form package.module:callable "
                          f"(e.g. mypkg.models:make_net)")
    module_name, attr_path = spec.split(":", 1)
    try:
        with _cwd_first():
            module = importlib.import_module(module_name)
    except SystemExit as e:
        raise ConfigError(f"--model {spec}: importing {module_name!r} called sys.exit"
                          f"({e.code!r}); a model module must not end the process") from None
    except ModuleNotFoundError as e:
        raise ConfigError(f"--model {spec}: cannot import {module_name!r} ({e}); run from the "
                          f"folder that holds it or add it to PYTHONPATH") from None
    except Exception as e:  # the module's own code failed while importing
        raise ConfigError(f"--model {spec}: importing {module_name!r} failed: "
                          f"{type(e).__name__}: {_first_line(e)}") from None
    obj = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"--model {spec}: {module_name!r} has no attribute "
                              f"{attr_path!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"--model {spec}: {attr_path!r} is a {type(obj).__name__}, not a "
                          f"callable that returns an nn.Module")
    return obj


def build_user_model(spec: str) -> nn.Module:
    """Call the callable ``spec`` names (no arguments) and return the module it builds."""
    factory = resolve_callable(spec)
    try:
        with _cwd_first():  # the callable may import its helpers from the same folder
            model = factory()
    except SystemExit as e:
        raise ConfigError(f"--model {spec}: calling it called sys.exit({e.code!r}); it must "
                          f"return an nn.Module") from None
    except Exception as e:
        raise ConfigError(f"--model {spec}: calling it failed: {type(e).__name__}: "
                          f"{_first_line(e)}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model {spec} returned a {type(model).__name__}, not an "
                          f"nn.Module")
    return model


@contextlib.contextmanager
def _cwd_first() -> Iterator[None]:
    """The working directory first on ``sys.path`` for the ``with`` body only (unless it
    was on the path before, where it stays as it was)."""
    cwd = os.getcwd()
    if cwd in sys.path or "" in sys.path:
        yield
        return
    sys.path.insert(0, cwd)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(cwd)
        importlib.invalidate_caches()


def _first_line(e: BaseException, limit: int = 160) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else "no detail"
    return text if len(text) <= limit else text[:limit] + "…"


__all__ = ["resolve_callable", "build_user_model"]
