"""Turn knowledge entries and search decisions into short Dutch answers with buttons.

A topic's answer is its own text, then the aspects it has (price, who, what to bring, where,
appointment) and the official link; buttons lead to related topics. Reports end with what to
include and the meldingen link, suggestions with a KAFKA button, topics the city does not handle
say who does. Catalogue products keep the catalogue's answers (bot/core/answers.py) unchanged.
Every sentence comes from the ``knowledge`` section of texts.yml.
"""
from __future__ import annotations

from typing import List, Optional

from bot.core import answers
from bot.core.answers import Answer, Button, payload
from bot.core.catalogue import Catalogue, Location, Product
from bot.core.knowledge import Entry, Kind, Knowledge, Topic
from bot.core.search import Decision
from bot.core.texts import say

MAX_BUTTONS = 4


def entry_button(entry: Entry) -> Button:
    """A tap on it asks about that entry: products through the product intent, topics through ask_city."""
    if entry.product:
        return {"title": entry.title, "payload": payload("ask_product_info", product=entry.id)}
    return {"title": entry.title, "payload": payload("ask_city", topic=entry.id)}


def _appointment(topic: Topic, channel: Optional[str]) -> Optional[str]:
    return say(f"knowledge.appointment.{topic.appointment.value}", channel) if topic.appointment else None


def topic_answer(knowledge: Knowledge, topic: Topic, channel: Optional[str] = None) -> Answer:
    """The full answer to a topic: text, aspects, link, related topics as buttons."""
    lines: List[str] = [topic.title]
    if topic.kind == Kind.elsewhere:
        lines.append(say("knowledge.elsewhere", channel, who=topic.elsewhere))
    lines.append(topic.answer.strip())
    if topic.kind == Kind.report:
        if topic.bring:
            lines.append(say("knowledge.report_include", channel))
            lines.extend(f"- {item}" for item in topic.bring)
        lines.append(say("knowledge.report_link", channel, url=topic.url))
    else:
        if topic.price:
            lines.append(say("knowledge.price", channel, price=topic.price))
        if topic.who:
            lines.append(say("knowledge.who", channel, who=topic.who))
        if topic.bring:
            lines.append(say("knowledge.bring", channel))
            lines.extend(f"- {item}" for item in topic.bring)
        if topic.where:
            lines.append(say("knowledge.where", channel, where=topic.where))
        appointment = _appointment(topic, channel)
        if appointment:
            lines.append(appointment)
        lines.append(say("knowledge.more_info", channel, url=topic.url))
    buttons: List[Button] = []
    if topic.kind == Kind.suggestion:
        buttons.append({"title": say("knowledge.kafka_button", channel), "payload": payload("kafka_suggestion")})
    for related in topic.related:
        entry = knowledge.entry(related)
        if entry:
            buttons.append(entry_button(entry))
    return Answer("\n".join(lines), buttons[:MAX_BUTTONS])


def topic_aspect(knowledge: Knowledge, topic: Topic, aspect: str, channel: Optional[str] = None) -> Answer:
    """One aspect of a topic ("en hoeveel kost dat?"); says so and gives the link when it has none."""
    url, title = topic.url, topic.title
    if aspect == "price":
        text = (f"{title}: {say('knowledge.price', channel, price=topic.price)}\n{say('knowledge.more_info', channel, url=url)}"
                if topic.price else say("knowledge.no_price", channel, title=title, url=url))
    elif aspect == "documents":
        text = (say("knowledge.bring", channel) + "\n" + "\n".join(f"- {item}" for item in topic.bring)
                + "\n" + say("knowledge.more_info", channel, url=url)
                if topic.bring else say("knowledge.no_bring", channel, title=title, url=url))
    elif aspect == "where":
        text = (f"{title}: {topic.where}\n{say('knowledge.more_info', channel, url=url)}"
                if topic.where else say("knowledge.no_where", channel, title=title, url=url))
    elif aspect == "appointment":
        appointment = _appointment(topic, channel)
        text = (f"{title}: {appointment}\n{say('knowledge.more_info', channel, url=url)}"
                if appointment else say("knowledge.no_appointment", channel, title=title, url=url))
    else:
        return topic_answer(knowledge, topic, channel)
    return Answer(text, [entry_button(e) for e in map(knowledge.entry, topic.related) if e][:MAX_BUTTONS])


def entry_answer(knowledge: Knowledge, entry: Entry, aspect: str = "info", channel: Optional[str] = None) -> Answer:
    if entry.product:
        return answers.product_answer(knowledge.catalogue, entry.product, aspect)
    assert entry.topic is not None
    return topic_aspect(knowledge, entry.topic, aspect, channel)


def decision_answer(
    knowledge: Knowledge, decision: Decision, aspect: str = "info", channel: Optional[str] = None
) -> Optional[Answer]:
    """The answer to a search decision; None when the search found nothing plausible."""
    if decision.kind == "answer" and decision.best:
        return entry_answer(knowledge, decision.best.entry, aspect, channel)
    if decision.kind in ("choose", "mixed"):
        key = "knowledge.mixed" if decision.kind == "mixed" else "knowledge.choose"
        return Answer(say(key, channel), [entry_button(hit.entry) for hit in decision.hits])
    return None


def office_answer(catalogue: Catalogue, product: Product, location: Location, channel: Optional[str] = None) -> Answer:
    """ "Kan dat ook in Oostakker?": yes or no for that office, instead of the list of all offices."""
    name = product.in_sentence
    if not product.locations:
        where = product.online or product.desk
        text = say("knowledge.office_online", channel, product=name, where=where)
    elif location.id in product.locations:
        appointment = answers._appointment_sentence(product)
        text = say("knowledge.office_yes", channel, product=name, office=location.name, address=location.address,
                   appointment=appointment)
    else:
        offices = "\n".join(f"- {loc.name}, {loc.address}" for loc in catalogue.locations_for(product.id))
        text = say("knowledge.office_no", channel, product=name, office=location.name, offices=offices)
    return Answer(f"{text}\n{say('knowledge.more_info', channel, url=product.url)}", answers._follow_ups(product, "where"))
