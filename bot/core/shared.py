"""The one idiom for a process-wide object built from the environment: :class:`Shared`.

A ``Shared(build, "VAR", ...)`` calls ``build`` with those variables' values on first use, keeps the
result (per event loop with ``per_loop=True``, for asyncio clients bound to their loop), and builds
again when one of the values changed, so a test that sets ``REDIS_URL`` gets a store on that URL.
:func:`override` replaces the environment of all of them at once (the ``wiring`` fixture in
``tests/conftest.py``); :func:`reset` forgets everything built. ``bot/wiring.py`` lists the services.
"""
from __future__ import annotations

import os
import threading
import weakref
from collections import ChainMap
from contextlib import contextmanager
from typing import Callable, Dict, Generic, Iterator, List, Mapping, Optional, Tuple, TypeVar

from bot.core.loops import LoopLocal

T = TypeVar("T")
Values = Tuple[Optional[str], ...]

_overrides: Optional[Mapping[str, str]] = None
_all: "weakref.WeakSet[Shared]" = weakref.WeakSet()


def environ() -> Mapping[str, str]:
    """The environment services are built from: the process's, or a test's override."""
    return os.environ if _overrides is None else _overrides  # a ChainMap: later setenv is seen too


def env(name: str) -> Optional[str]:
    """One variable, ``None`` when unset or empty (an empty ``REDIS_URL`` means no Redis)."""
    return environ().get(name) or None


class Shared(Generic[T]):
    """One service per value of the variables it reads; ``per_loop`` for loop-bound clients."""

    def __init__(self, build: Callable[..., T], *names: str, per_loop: bool = False) -> None:
        self._build = build
        self._names = names
        self._per_loop = per_loop
        self._built: Dict[Values, T] = {}
        self._loops: Dict[Values, LoopLocal[T]] = {}
        self._lock = threading.Lock()
        _all.add(self)

    def __call__(self) -> T:
        values = tuple(env(name) for name in self._names)
        with self._lock:
            if self._per_loop:
                local = self._loops.get(values)
                if local is None:
                    local = self._loops[values] = LoopLocal(lambda: self._build(*values))
            elif values not in self._built:
                self._built[values] = self._build(*values)
                return self._built[values]
            else:
                return self._built[values]
        return local.get()

    def take_built(self) -> List[T]:
        """Forget and return what was built (in the running loop, for ``per_loop``), to close it."""
        with self._lock:
            if not self._per_loop:
                built, self._built = list(self._built.values()), {}
                return built
            locals_ = list(self._loops.values())
        return [item for item in (local.pop() for local in locals_) if item is not None]

    def reset(self) -> None:
        with self._lock:
            self._built.clear()
            self._loops.clear()


def reset() -> None:
    """Forget every built service: the next use builds it again from the environment."""
    for shared in list(_all):
        shared.reset()


@contextmanager
def override(values: Mapping[str, str], *, inherit: bool = True) -> Iterator[None]:
    """Build services from ``values`` (on top of the process environment when ``inherit``)."""
    global _overrides
    previous = _overrides
    _overrides = ChainMap(dict(values), os.environ) if inherit else dict(values)
    reset()
    try:
        yield
    finally:
        _overrides = previous
        reset()
