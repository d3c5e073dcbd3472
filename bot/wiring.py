"""The shared services of a process, built from the environment once, in one idiom.

A service is a ``bot.core.shared.Shared``: built on first use from the environment variables it
names, kept for the process (or per event loop, for asyncio clients), and built again when one of
those variables changed. Tests replace the environment of all of them at once with
:func:`override` (the ``wiring`` fixture in ``tests/conftest.py``); :func:`reset` forgets them all.

The services (and the modules that define them with ``Shared``, next to what they build):

- ``handoff_store()``  the human handoff in Redis, or None without ``REDIS_URL`` (below)
- ``connectors.state.default_state()``  delivery dedupe and offered buttons (Redis or memory)
- ``connectors.webchat_bus.default_bus()``  the web chat's push bus, per event loop
- ``connectors.whatsapp`` / ``connectors.telegram`` outbound senders, per configuration
- ``bot.action_server.replays()``  answers of replayed form turns
- ``bot.core.handoff_hours.get_config()``  agents' hours (``GENTINFO_HANDOFF_CONFIG``)

Content files that do not depend on the environment (``texts.yml``, ``catalogue.yml``) are read once
by their loaders (``get_texts()``, ``get_catalogue()``).

Redis clients themselves come from ``bot.core.redis_clients`` (one set of timeouts).
"""
from __future__ import annotations

from typing import Optional

from bot.core.handoff import HandoffStore
from bot.core.shared import Shared as Shared
from bot.core.shared import env as env
from bot.core.shared import environ as environ
from bot.core.shared import override as override
from bot.core.shared import reset as reset


def _handoff_store(url: Optional[str]) -> Optional[HandoffStore]:
    # Without Redis (the embedded default) there is no live chat with agents.
    return HandoffStore(url) if url else None


#: The handoff store for ``REDIS_URL``, or None. Cheap: it opens one pool per event loop itself.
handoff_store: Shared[Optional[HandoffStore]] = Shared(_handoff_store, "REDIS_URL")
