"""Turn catalogue entries into short Dutch (B1) answers with follow-up buttons.

Plain text only: the same words go to WhatsApp, Telegram and the web chat, and every channel
renders a URL as a link. Buttons carry Rasa payloads so a tap keeps the product in context.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Dict, List, Optional

from bot.core.catalogue import WEEKDAYS, Appointment, Catalogue, Location, Product
from bot.core.texts import say

Button = Dict[str, str]

ASPECTS = ("info", "price", "documents", "appointment", "where", "delivery")

#: The products people ask about most; offered when we do not know which one they mean.
POPULAR_PRODUCTS = ("reispas", "identiteitskaart", "kids_id", "rijbewijs", "adreswijziging", "bewonerskaart")


@dataclass
class Answer:
    text: str
    buttons: List[Button] = field(default_factory=list)


def payload(intent: str, **entities: str) -> str:
    """A Rasa button payload: ``/ask_price{"product": "reispas"}``."""
    return f"/{intent}{json.dumps(entities, ensure_ascii=False)}" if entities else f"/{intent}"


def which_product(catalogue: Catalogue, intent: str) -> Answer:
    return Answer(
        say("answers.which_product"),
        [
            {"title": product.name, "payload": payload(intent, product=product.id)}
            for product in (catalogue.product(pid) for pid in POPULAR_PRODUCTS)
            if product
        ],
    )


def product_answer(catalogue: Catalogue, product: Product, aspect: str) -> Answer:
    """The answer to one aspect of a product question, with buttons for the likely next question."""
    text = {
        "info": _info,
        "price": _price,
        "documents": _documents,
        "appointment": _appointment,
        "where": _where,
        "delivery": _delivery,
    }[aspect](catalogue, product)
    return Answer(say("answers.more_info", text=text, url=product.url), _follow_ups(product, aspect))


def _info(catalogue: Catalogue, product: Product) -> str:
    return say("answers.info", name=product.name, summary=product.summary, who=product.who,
               appointment=_appointment_sentence(product))


def _price(catalogue: Catalogue, product: Product) -> str:
    return say("answers.price", product=product.in_sentence, price=product.price)


def _documents(catalogue: Catalogue, product: Product) -> str:
    if not product.bring:
        return say("answers.documents_none", product=product.in_sentence)
    items = "\n".join(f"- {item}" for item in product.bring)
    return say("answers.documents", product=product.in_sentence, items=items)


def _appointment(catalogue: Catalogue, product: Product) -> str:
    return _appointment_sentence(product)


def _appointment_sentence(product: Product) -> str:
    if product.appointment == Appointment.required:
        return say("answers.appointment_required", product=product.in_sentence, desk=product.desk)
    if product.appointment == Appointment.recommended:
        return say("answers.appointment_recommended", product=product.in_sentence)
    if product.online:
        return say("answers.appointment_online", product=product.in_sentence, online=product.online)
    return say("answers.appointment_not_needed", product=product.in_sentence, desk=product.desk)


def _where(catalogue: Catalogue, product: Product) -> str:
    locations = catalogue.locations_for(product.id)
    lines = [f"- {loc.name}, {loc.address}" for loc in locations]
    parts = []
    if lines:
        parts.append(say("answers.where", desk=product.desk, lines="\n".join(lines)))
    else:
        parts.append(say("answers.where_elsewhere", desk=product.desk))
    if product.online:
        parts.append(say("answers.where_online", online=product.online))
    return "\n".join(parts)


def _delivery(catalogue: Catalogue, product: Product) -> str:
    return f"{product.name}: {product.delivery}"


def _follow_ups(product: Product, aspect: str) -> List[Button]:
    options = [("price", "ask_price"), ("documents", "ask_documents"), ("where", "ask_where")]
    buttons = [
        {"title": say(f"answers.button_{key}"), "payload": payload(intent, product=product.id)}
        for key, intent in options
        if key != aspect
    ]
    if product.bookable:
        buttons.insert(0, {"title": say("answers.button_book"), "payload": payload("book_appointment", product=product.id)})
    return buttons[:4]


# -- locations and contact ------------------------------------------------------------------------

def _closing_day(catalogue: Catalogue, location: Location, day: date) -> Optional[str]:
    for closing in catalogue.closing_days:
        if closing.date == day and (not closing.locations or location.id in closing.locations):
            return closing.reason
    return None


def opening_hours_answer(catalogue: Catalogue, location: Location, now: datetime) -> Answer:
    today = now.date()
    closed_reason = _closing_day(catalogue, location, today)
    spans = location.opening_hours.get(WEEKDAYS[today.weekday()], [])
    if closed_reason:
        today_text = say("answers.today_closed_for", location=location.name, reason=closed_reason)
    elif spans:
        today_text = say("answers.today_open", weekday=WEEKDAYS[today.weekday()], location=location.name,
                         hours=_spans_text(spans))
    else:
        today_text = say("answers.today_closed", weekday=WEEKDAYS[today.weekday()], location=location.name)
    upcoming = [
        say("answers.closing_day", day=c.date.strftime('%d/%m'), reason=c.reason)
        for c in catalogue.closing_days
        if 0 < (c.date - today).days <= 21 and (not c.locations or location.id in c.locations)
    ]
    text = say("answers.opening_hours", location=location.name, address=location.address,
               hours=location.opening_hours_text(), today=today_text)
    if upcoming:
        text += say("answers.closing_soon", days="\n".join(upcoming))
    text += f"\n{location.walk_in}"
    others = [loc for loc in catalogue.locations if loc.id != location.id][:4]
    return Answer(text, [{"title": loc.name, "payload": payload("ask_opening_hours", location=loc.id)} for loc in others])


def _spans_text(spans: List[str]) -> str:
    return say("answers.span_and").join(span.replace("-", say("answers.span_to")) for span in spans)


def location_answer(location: Location) -> Answer:
    return Answer(
        say("answers.location", location=location.name, address=location.address, walk_in=location.walk_in,
            url=location.url),
        [{"title": say("answers.button_opening_hours"), "payload": payload("ask_opening_hours", location=location.id)}],
    )


def locations_overview(catalogue: Catalogue) -> Answer:
    lines = "\n".join(f"- {loc.name}: {loc.address}" for loc in catalogue.locations)
    return Answer(
        say("answers.locations", lines=lines),
        [{"title": say("answers.button_opening_hours_of", location=loc.name),
          "payload": payload("ask_opening_hours", location=loc.id)} for loc in catalogue.locations[:4]],
    )


def contact_text(catalogue: Catalogue) -> str:
    contact = catalogue.contact
    return say("answers.contact", name=contact.name, gentinfo_phone=contact.phone, gentinfo_hours=contact.hours,
               gentinfo_email=contact.email)
