"""The handoff state in real Redis (test database 15): queue, claim race, stream, transitions, restart."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import AsyncIterator, List, Optional

import pytest
import redis.asyncio

from bot.core.handoff import (
    CITY_TZ,
    HandoffConfig,
    HandoffError,
    HandoffStore,
    conversation_key,
    is_stop,
    load_config,
    when_text,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[HandoffStore]:
    store = HandoffStore(redis_url)
    yield store
    await store.close()


async def _queue(store: HandoffStore, *conversations: str, start: Optional[float] = None) -> List[str]:
    """Queue conversations a second apart (from now, unless ``start`` says otherwise)."""
    start = time.time() - len(conversations) if start is None else start
    ids = []
    for offset, conversation in enumerate(conversations):
        queued = await store.enqueue(conversation, reason="explicit", context={}, now=start + offset)
        ids.append(queued.handoff.id)
    return ids


async def test_queue_is_ordered_by_waiting_time_and_asking_again_keeps_the_place(store: HandoffStore) -> None:
    first = await store.enqueue("telegram:1", reason="explicit", context={"slots": {"product": "reispas"}}, now=100)
    second = await store.enqueue("whatsapp:+32470000002", reason="misunderstood", context={}, now=50)
    third = await store.enqueue("web:abc", reason="topic", context={}, now=200)

    assert [h.id for h in await store.waiting()] == [second.handoff.id, first.handoff.id, third.handoff.id]
    assert (first.created, first.position) == (True, 1)
    assert await store.position(first.handoff.id) == 2
    assert await store.position(third.handoff.id) == 3

    again = await store.enqueue("telegram:1", reason="explicit", context={}, now=300)
    assert (again.created, again.handoff.id, again.position) == (False, first.handoff.id, 2)
    assert again.handoff.since == 100 and again.handoff.context == {"slots": {"product": "reispas"}}
    assert store.wait_minutes(2) == 2 * store.config.minutes_per_waiting_conversation


async def test_twenty_concurrent_claims_have_exactly_one_winner(store: HandoffStore) -> None:
    [handoff_id] = await _queue(store, "telegram:42")
    # 20 separate clients, as 20 console processes would have
    stores = [HandoffStore(store.url) for _ in range(20)]
    results = await asyncio.gather(*(s.claim(handoff_id, f"agent{n}") for n, s in enumerate(stores)),
                                   return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, HandoffError)]
    assert len(winners) == 1 and len(losers) == 19
    holder = winners[0].agent
    assert {loser.code for loser in losers} == {"taken"} and {loser.holder for loser in losers} == {holder}
    held = await store.get(handoff_id)
    assert held is not None and (held.status, held.agent) == ("held", holder)
    assert await store.waiting() == [] and [h.id for h in await store.held()] == [handoff_id]
    for s in stores:
        await s.close()


async def test_held_conversation_messages_go_to_the_stream_and_stop_hands_back(store: HandoffStore) -> None:
    [handoff_id] = await _queue(store, "whatsapp:+32470000001")
    waiting = await store.citizen_message("whatsapp:+32470000001", "Ik wacht nog")
    assert waiting.action == "held" and not waiting.to_assistant
    await store.claim(handoff_id, "an")
    held = await store.citizen_message("whatsapp:+32470000001", "Mijn reispas is gestolen")
    assert (held.action, held.handoff_id) == ("held", handoff_id)
    reply = await store.agent_message(handoff_id, "an", "Dag, ik help u verder.")
    await store.note(handoff_id, "an", "Aangifte bij politie nodig")

    transcript = await store.transcript(handoff_id)
    assert [(e["type"], e["text"]) for e in transcript[1:]] == [
        ("citizen", "Ik wacht nog"),
        ("system", "an neemt het gesprek over."),
        ("citizen", "Mijn reispas is gestolen"),
        ("agent", "Dag, ik help u verder."),
        ("note", "Aangifte bij politie nodig"),
    ]
    assert transcript[0]["type"] == "system"
    assert await store.transcript(handoff_id, after=reply["id"]) == transcript[-1:]
    assert [e["text"] for e in await store.recent(handoff_id, 2)] == ["Dag, ik help u verder.", "Aangifte bij politie nodig"]
    # another conversation is not affected
    assert (await store.citizen_message("whatsapp:+32470000009", "hallo")).action == "pass"

    stopped = await store.citizen_message("whatsapp:+32470000001", " Stop! ")
    assert stopped.action == "stopped" and stopped.to_assistant
    closed = await store.get(handoff_id)
    assert closed is not None and (closed.status, closed.outcome) == ("closed", "citizen_stop")
    assert (await store.citizen_message("whatsapp:+32470000001", "hallo")).action == "pass"
    assert await store.held() == []


async def test_handback_and_close_transitions(store: HandoffStore, redis_url: str) -> None:
    first, second, third = await _queue(store, "telegram:1", "telegram:2", "telegram:3")
    await store.claim(first, "an")

    with pytest.raises(HandoffError) as not_holder:
        await store.agent_message(first, "bert", "Ik neem over")
    assert not_holder.value.code == "not_holder"
    with pytest.raises(HandoffError):
        await store.finish(first, "bert", "handback")
    with pytest.raises(HandoffError) as not_claimed:
        await store.agent_message(second, "an", "Nog niet geclaimd")
    assert not_claimed.value.code == "gone"

    back = await store.finish(first, "an", "handback")
    assert (back.status, back.outcome, back.conversation) == ("closed", "handback", "telegram:1")
    assert (await store.citizen_message("telegram:1", "hallo")).action == "pass"
    for action in (store.claim(first, "bert"), store.finish(first, "an", "closed"), store.agent_message(first, "an", "x")):
        with pytest.raises(HandoffError) as gone:
            await action
        assert gone.value.code == "gone"

    # a waiting conversation nobody holds can be closed by any agent (e.g. answered by phone)
    closed = await store.finish(second, "bert", "closed")
    assert (closed.status, closed.outcome) == ("closed", "closed")
    assert [h.id for h in await store.waiting()] == [third]

    # closed handoffs expire after the retention period, the active pointer is gone at once
    client = redis.asyncio.Redis.from_url(redis_url)
    assert 0 < await client.ttl(f"gentinfo:handoff:h:{first}") <= store.config.retention_days * 86400
    assert await client.exists(f"gentinfo:handoff:active:{conversation_key('telegram:1')}") == 0
    await client.close()

    # a new escalation of the same conversation is a new handoff with its own transcript
    again = await store.enqueue("telegram:1", reason="explicit", context={})
    assert again.created and again.handoff.id != first and again.position == 2

    with pytest.raises(HandoffError) as missing:
        await store.claim("0" * 24, "an")
    assert missing.value.code == "not_found"


async def test_out_of_hours_the_next_message_is_left_for_the_agents(store: HandoffStore) -> None:
    pending = await store.enqueue("telegram:7", reason="explicit", context={}, live=False, now=1000)
    assert pending.handoff.status == "message" and pending.position is None
    assert await store.waiting() == []

    left = await store.citizen_message("telegram:7", "Kan iemand mij morgen terugbellen?", now=1060)
    assert left.action == "message_left" and not left.to_assistant
    entry = await store.get(pending.handoff.id)
    assert entry is not None and (entry.status, entry.offline, entry.since) == ("waiting", True, 1060)
    assert [h.id for h in await store.waiting()] == [pending.handoff.id]
    # the assistant answers the citizen's other questions meanwhile
    assert (await store.citizen_message("telegram:7", "openingsuren?", now=1100)).action == "pass"

    # next morning an agent claims it: from then on the agent has the conversation
    await store.claim(pending.handoff.id, "an")
    assert (await store.citizen_message("telegram:7", "Ja, ik ben er", now=90000)).action == "held"


async def test_out_of_hours_stop_declines_and_silence_expires(store: HandoffStore) -> None:
    await store.enqueue("telegram:8", reason="explicit", context={}, live=False, now=1000)
    assert (await store.citizen_message("telegram:8", "stop", now=1010)).action == "stopped"
    assert await store.active_for("telegram:8") is None

    pending = await store.enqueue("telegram:8", reason="explicit", context={}, live=False, now=2000)
    wait = store.config.message_wait_minutes * 60
    expired = await store.citizen_message("telegram:8", "hallo", now=2000 + wait + 1)
    assert expired.action == "expired" and expired.to_assistant
    closed = await store.get(pending.handoff.id)
    assert closed is not None and closed.outcome == "expired"


async def test_a_forgotten_hold_is_released_after_the_idle_time(store: HandoffStore) -> None:
    [handoff_id] = await _queue(store, "web:s1", start=1000)
    await store.claim(handoff_id, "an", now=1010)
    idle = store.config.idle_release_hours * 3600
    assert (await store.citizen_message("web:s1", "nog iemand?", now=1010 + idle - 5)).action == "held"
    released = await store.citizen_message("web:s1", "hallo?", now=1010 + 2 * idle)
    assert released.action == "expired"
    assert await store.held() == []


async def test_asking_live_again_turns_a_left_message_into_a_live_wait(store: HandoffStore) -> None:
    pending = await store.enqueue("telegram:9", reason="explicit", context={}, live=False, now=1000)
    await store.citizen_message("telegram:9", "Mijn vraag", now=1010)
    again = await store.enqueue("telegram:9", reason="explicit", context={}, live=True, now=5000)
    assert (again.created, again.handoff.id, again.position) == (False, pending.handoff.id, 1)
    assert again.handoff.offline is False
    assert (await store.citizen_message("telegram:9", "Ik ben er nu", now=5010)).action == "held"


async def test_state_survives_a_restart_of_every_process(redis_url: str) -> None:
    before = HandoffStore(redis_url)
    [a, b] = await _queue(before, "telegram:1", "whatsapp:+32470000003")
    await before.claim(b, "an")
    await before.citizen_message("whatsapp:+32470000003", "Bent u er nog?")
    await before.set_availability("open")
    await before.close()

    after = HandoffStore(redis_url)  # a new process: nothing but the URL
    assert [h.id for h in await after.waiting()] == [a]
    held = await after.held()
    assert [(h.id, h.agent) for h in held] == [(b, "an")]
    assert (await after.transcript(b))[-1]["text"] == "Bent u er nog?"
    assert await after.availability() == "open"
    assert (await after.citizen_message("whatsapp:+32470000003", "Hallo")).action == "held"
    await after.close()


async def test_events_reach_every_subscriber(store: HandoffStore, redis_url: str) -> None:
    listener = HandoffStore(redis_url)
    received: List[dict] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async for event in listener.events():
            received.append(event)
            ready.set()
            if event.get("type") == "claimed":
                return

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.2)  # subscribed
    [handoff_id] = await _queue(store, "telegram:5")
    await store.claim(handoff_id, "an")
    await asyncio.wait_for(task, 5)
    assert [e["type"] for e in received] == ["resync", "queued", "claimed"]
    assert all(e["id"] == handoff_id for e in received[1:])
    await listener.close()


async def test_availability_switch_overrides_the_hours(store: HandoffStore) -> None:
    sunday_night = datetime(2026, 11, 29, 23, 0, tzinfo=CITY_TZ)
    monday_morning = datetime(2026, 11, 30, 9, 0, tzinfo=CITY_TZ)
    assert await store.availability() == "auto"
    assert not await store.agents_available(sunday_night)
    assert await store.agents_available(monday_morning)
    await store.set_availability("open")
    assert await store.agents_available(sunday_night)
    await store.set_availability("closed")
    assert not await store.agents_available(monday_morning)
    await store.set_availability("auto")
    assert await store.agents_available(monday_morning)


def test_hours_next_opening_and_texts() -> None:
    config = load_config()
    assert config.hours_text() == "maandag tot vrijdag van 8 tot 18 uur, zaterdag van 9 tot 12 uur"
    friday_evening = datetime(2026, 11, 27, 19, 0, tzinfo=CITY_TZ)
    saturday = config.next_opening(friday_evening)
    assert saturday == datetime(2026, 11, 28, 9, 0, tzinfo=CITY_TZ)
    assert when_text(saturday, friday_evening) == "morgen om 9 uur"
    sunday = datetime(2026, 11, 29, 10, 0, tzinfo=CITY_TZ)
    assert when_text(config.next_opening(sunday), sunday) == "morgen om 8 uur"
    early = datetime(2026, 11, 30, 7, 0, tzinfo=CITY_TZ)
    assert when_text(config.next_opening(early), early) == "vandaag om 8 uur"
    christmas = datetime(2026, 12, 25, 10, 0, tzinfo=CITY_TZ)
    assert not config.is_open(christmas)
    assert config.is_open(datetime(2026, 12, 24, 10, 0, tzinfo=CITY_TZ))
    # without an hours block: Gentinfo's own hours
    assert HandoffConfig().hours_text() == config.hours_text()


def test_config_is_validated() -> None:
    for broken in ({"hours": {"zondag": ["18:00-08:00"]}}, {"hours": {"maandagje": ["08:00-12:00"]}},
                   {"always_human_products": ["bestaat_niet"]}, {"minutes_per_waiting_conversation": 0},
                   {"onbekend": 1}):
        with pytest.raises(ValueError):
            HandoffConfig.parse_obj(broken)


@pytest.mark.parametrize("text", ["stop", "STOP", " Stop! ", "/stop", "stoppen", "stop aub"])
def test_stop_words(text: str) -> None:
    assert is_stop(text)


@pytest.mark.parametrize("text", ["stopt de tram hier?", "niet stoppen", "", "stopzetten"])
def test_not_stop_words(text: str) -> None:
    assert not is_stop(text)


def test_context_is_json_in_redis(redis_url: str) -> None:
    async def run() -> str:
        store = HandoffStore(redis_url)
        queued = await store.enqueue("telegram:1", reason="topic", context={"slots": {"product": "overlijden"}})
        raw = await store.redis.hget(f"gentinfo:handoff:h:{queued.handoff.id}", "context")
        await store.close()
        return raw

    assert json.loads(asyncio.run(run())) == {"slots": {"product": "overlijden"}}
