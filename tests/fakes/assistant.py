"""A Sanic server with one input channel mounted the way Rasa mounts it, and a double for the agent.

``rasa.core.channels.channel.register`` puts the channel's blueprint under ``/webhooks/<name>`` and
hands it a callback that calls ``app.ctx.agent.handle_message``. Here the agent is
``AssistantDouble``: it records each ``UserMessage`` and answers through the message's output
channel, as Rasa does with a domain response. Everything between the webhook and that agent is the
real connector.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from typing import Any, Callable, Dict, List, Optional

from rasa.core.channels.channel import InputChannel, UserMessage, register
from sanic import Sanic

Answer = Callable[[UserMessage], List[Dict[str, Any]]]


def echo(message: UserMessage) -> List[Dict[str, Any]]:
    return [{"text": f"U vroeg: {message.text}"}]


class AssistantDouble:
    """Stands in for Rasa's ``Agent``: ``replies`` maps a user text to the bot messages to send."""

    def __init__(self) -> None:
        self.messages: List[UserMessage] = []
        self.replies: Dict[str, List[Dict[str, Any]]] = {}

    @property
    def texts(self) -> List[Optional[str]]:
        return [message.text for message in self.messages]

    async def handle_message(self, message: UserMessage) -> None:
        self.messages.append(message)
        for bot_message in self.replies.get(message.text or "", None) or echo(message):
            await message.output_channel.send_response(message.sender_id, dict(bot_message))


class ChannelServer:
    """Serves one channel on a free 127.0.0.1 port from a background thread."""

    def __init__(self, channel: InputChannel) -> None:
        # Sanic rewrites its HTTP class once per process unless in test mode (as sanic-testing does);
        # these tests start one app per test.
        Sanic.test_mode = True
        self.assistant = AssistantDouble()
        self.app = Sanic(f"channel_test_{uuid.uuid4().hex[:12]}")
        self.app.ctx.agent = self.assistant
        register([channel], self.app, route="/webhooks/")
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="channel-server", daemon=True)
        self._server: Any = None

    async def _start(self) -> None:
        self._server = await self.app.create_server(sock=self._socket, return_asyncio_server=True, access_log=False)
        await self._server.startup()
        await self._server.before_start()  # create_server() already opened the socket
        await self._server.after_start()

    async def _stop(self) -> None:
        """Sanic's own graceful shutdown, in short: stop listening, close idle keep-alive connections."""
        await self._server.before_stop()
        await self._server.close()
        for connection in list(self._server.connections):
            connection.close_if_idle()
        for _ in range(20):
            if not self._server.connections:
                break
            await asyncio.sleep(0.05)
        for connection in list(self._server.connections):
            connection.abort()
        await self._server.after_stop()
        await asyncio.sleep(0)  # let aborted connection tasks finish before the loop stops

    def start(self) -> "ChannelServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
