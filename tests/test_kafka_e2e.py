"""File KAFKA suggestions through the real assistant (REST channel) and read them back the way the
city's staff do: through the staff API of ``channels/kafka_api.py`` on the same database."""
from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from typing import Any, Dict, List, Optional, Tuple

from aiohttp.test_utils import TestClient, TestServer

from bot.core import db
from bot.core.kafka import KafkaRegister
from channels.kafka_api import make_app
from tests.assistant import button, text_of

REFERENCE = re.compile(r"\bKAFKA-\d{4}-\d{6}\b")
PROBLEM = "Voor mijn bewonerskaart moet ik het inschrijvingsbewijs opsturen, terwijl de stad dat zelf kan opvragen."


def sender() -> str:
    return f"web:{uuid.uuid4()}"


def register_of(assistant) -> KafkaRegister:
    engine = db.make_engine(assistant.env["GENTINFO_DATABASE_URL"])
    db.create_schema(engine)
    return KafkaRegister(engine)


def staff_api(assistant, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Tuple[int, Any]:
    """One call to the staff API (bearer token), served on a local test server."""
    token = secrets.token_urlsafe(32)

    async def call() -> Tuple[int, Any]:
        async with TestClient(TestServer(make_app(register_of(assistant), token))) as client:
            response = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
            return response.status, await response.json()

    return asyncio.run(call())



def file_suggestion(assistant, me: str, *, named: bool) -> str:
    assert "Wat vindt u te ingewikkeld" in assistant.texts(me, "ik heb een idee om het eenvoudiger te maken")
    assert "minstens 3 woorden" in assistant.texts(me, "te moeilijk")
    products = assistant.rest(me, PROBLEM)
    assert button(products, "Bewonerskaart (parkeren)")  # the product named in the text comes first
    proposal = assistant.rest(me, button(products, "Bewonerskaart (parkeren)"))
    identity = assistant.rest(me, "Vraag het zelf op bij de DIV." if named else button(proposal, "Geen voorstel"))
    if named:
        consent = assistant.rest(me, button(identity, "Contacteer mij"))
        assert "maximaal 1 jaar" in text_of(consent)
        assert "naam" in assistant.texts(me, button(consent, "Ja, akkoord"))
        assistant.texts(me, "An De Smet")
        assert "e-mailadres klopt niet" in assistant.texts(me, "an@")
        summary = assistant.rest(me, "an.desmet@example.be")
    else:
        summary = assistant.rest(me, button(identity, "Anoniem blijven"))
    assert "Dit is uw melding" in text_of(summary) and PROBLEM in text_of(summary)
    filed = text_of(assistant.rest(me, button(summary, "Ja, verstuur")))
    assert "Wat gebeurt er nu?" in filed
    return REFERENCE.search(filed).group(0)


def test_anonymous_suggestion_is_stored_verbatim_without_channel_ids(assistant) -> None:
    reference = file_suggestion(assistant, sender(), named=False)
    status, record = staff_api(assistant, "GET", f"/api/kafka/suggestions/{reference}")
    assert status == 200
    assert record["problem"] == PROBLEM and record["product_id"] == "bewonerskaart" and record["proposal"] is None
    assert record["anonymous"] is True and record["consent"] is False
    assert record["channel"] is None and record["conversation_id"] is None and record["contact_email"] is None


def test_named_suggestion_with_consent_then_status_in_the_chat(assistant) -> None:
    me = sender()
    reference = file_suggestion(assistant, me, named=True)
    status, record = staff_api(assistant, "GET", f"/api/kafka/suggestions/{reference}")
    assert status == 200 and record["proposal"] == "Vraag het zelf op bij de DIV."
    assert (record["contact_name"], record["contact_email"], record["consent"]) == ("An De Smet", "an.desmet@example.be", True)
    assert (record["channel"], record["conversation_id"]) == ("web", me)

    status, _ = staff_api(assistant, "PATCH", f"/api/kafka/suggestions/{reference}", {"status": "in_behandeling"})
    assert status == 200
    answer = assistant.texts(sender(), f"wat is de status van {reference}?")
    assert reference in answer and "In behandeling" in answer
    number = int(reference.rsplit("-", 1)[1])
    other = sender()
    assert "referentienummer" in assistant.texts(other, "status van mijn melding")
    assert "In behandeling" in assistant.texts(other, f"kafka {reference.split('-')[1]} {number}")


def test_stop_halfway_files_nothing(assistant) -> None:
    before = register_of(assistant).count()
    me = sender()
    assistant.texts(me, "kafka melding")
    assistant.texts(me, PROBLEM)
    assert "niets bewaard" in assistant.texts(me, "stop")
    assert register_of(assistant).count() == before
