"""Run an aiohttp application in a background thread and record the requests it receives."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from aiohttp import web


@dataclass
class ApiCall:
    """One request as the fake API understood it."""

    method: str  # HTTP method
    path: str
    endpoint: str  # "Messages.json", "sendMessage", ...
    params: Dict[str, Any]  # last value per name (JSON fields decoded)
    lists: Dict[str, List[str]] = field(default_factory=dict)  # every value per name
    headers: Dict[str, str] = field(default_factory=dict)
    status: int = 200


class Recorder:
    """Thread-safe list of ``ApiCall``s: the server thread appends, the test thread reads."""

    def __init__(self) -> None:
        self._calls: List[ApiCall] = []
        self._changed = threading.Condition()

    def add(self, call: ApiCall) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    @property
    def calls(self) -> List[ApiCall]:
        with self._changed:
            return list(self._calls)

    def clear(self) -> None:
        with self._changed:
            self._calls.clear()

    def wait_for(self, count: int, timeout: float = 5.0, endpoint: Optional[str] = None) -> List[ApiCall]:
        """The first ``count`` calls (to ``endpoint``, if given); AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                calls = [c for c in self._calls if endpoint is None or c.endpoint == endpoint]
                if len(calls) >= count:
                    return calls[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} call(s) to {endpoint or 'the API'}, got {len(calls)}: {calls}")
                self._changed.wait(remaining)


class BackgroundServer:
    """An aiohttp app on a free 127.0.0.1 port, served from its own thread and event loop."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=f"fake-{type(self).__name__}", daemon=True)
        self._ready = threading.Event()
        self._runner: Optional[web.AppRunner] = None
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self._app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.SockSite(self._runner, self._socket).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> "BackgroundServer":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake API did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class FakeApi:
    """What every fake remote API shares: a background server and a record of the calls it got."""

    def __init__(self, app: web.Application) -> None:
        self._recorder = Recorder()
        self._server = BackgroundServer(app)

    def start(self) -> "FakeApi":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def calls(self) -> List[ApiCall]:
        """Every API request, also refused ones (see ``ApiCall.status``)."""
        return self._recorder.calls

    def clear(self) -> None:
        self._recorder.clear()

