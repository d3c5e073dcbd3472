"""One object per running event loop.

asyncio clients (redis.asyncio, PTB's httpx) hold connections bound to the loop that opened them;
Rasa runs one loop, but scripts sending through ``connectors.outbound`` and the tests may use others.
"""
from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Callable, Generic, Optional, TypeVar

T = TypeVar("T")


class LoopLocal(Generic[T]):
    """``get()`` builds the object on first use in a loop and returns the same one after."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._items: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T]" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        with self._lock:
            item = self._items.get(loop)
            if item is None:
                item = self._items[loop] = self._factory()
            return item

    def pop(self) -> Optional[T]:
        """Forget (and return) the object of the running loop, e.g. to close it."""
        with self._lock:
            return self._items.pop(asyncio.get_running_loop(), None)
