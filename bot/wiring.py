"""The shared services of a process, built from the environment once, in one idiom.

A service is a :class:`Shared`: built on first use from the environment variables it names, kept
for the process (or per event loop, for asyncio clients), and built again when one of those
variables changed — so a test that sets ``REDIS_URL`` gets a store on that URL. Tests replace the
environment of all of them at once with :func:`override` (the ``wiring`` fixture in
``tests/conftest.py``); :func:`reset` forgets every built service.

The services (and the modules that define them with :class:`Shared`):

- ``handoff_store()``  the human handoff in Redis, or None without ``REDIS_URL`` (below)
- ``connectors.state.default_state()``  delivery dedupe and offered buttons (Redis or memory)
- ``connectors.webchat_bus.default_bus()``  the web chat's push bus, per event loop
- ``connectors.whatsapp`` / ``connectors.telegram`` outbound senders, per configuration
- ``bot.action_server.replays()``  answers of replayed form turns

Redis clients themselves come from ``bot.core.redis_clients`` (one set of timeouts).
"""
from __future__ import annotations

import os
import threading
import weakref
from collections import ChainMap
from contextlib import contextmanager
from typing import Callable, Dict, Generic, Iterator, List, Mapping, Optional, Tuple, TypeVar

from bot.core.handoff import HandoffStore
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


def _handoff_store(url: Optional[str]) -> Optional[HandoffStore]:
    # Without Redis (the embedded default) there is no live chat with agents.
    return HandoffStore(url) if url else None


#: The handoff store for ``REDIS_URL``, or None. Cheap: it opens one pool per event loop itself.
handoff_store: Shared[Optional[HandoffStore]] = Shared(_handoff_store, "REDIS_URL")
