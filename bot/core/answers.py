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
        "Over welk document of welke dienst gaat uw vraag? Kies hieronder of typ het woord, bijvoorbeeld 'reispas' of 'verhuizen'.",
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
    return Answer(f"{text}\nMeer info: {product.url}", _follow_ups(product, aspect))


def _info(catalogue: Catalogue, product: Product) -> str:
    return f"{product.name}: {product.summary}\nWie? {product.who}\n{_appointment_sentence(product)}"


def _price(catalogue: Catalogue, product: Product) -> str:
    return f"Prijs {product.in_sentence}: {product.price}.\nDe prijzen zijn indicatief: aan de balie betaalt u het juiste bedrag, met bankkaart."


def _documents(catalogue: Catalogue, product: Product) -> str:
    if not product.bring:
        return f"Voor {product.in_sentence} hoeft u niets mee te brengen."
    items = "\n".join(f"- {item}" for item in product.bring)
    return f"Wat brengt u mee voor {product.in_sentence}?\n{items}"


def _appointment(catalogue: Catalogue, product: Product) -> str:
    return _appointment_sentence(product)


def _appointment_sentence(product: Product) -> str:
    if product.appointment == Appointment.required:
        return f"Voor {product.in_sentence} maakt u eerst een afspraak ({product.desk})."
    if product.appointment == Appointment.recommended:
        return f"Een afspraak is niet verplicht voor {product.in_sentence}, maar met een afspraak hoeft u niet te wachten."
    if product.online:
        return f"Voor {product.in_sentence} hebt u geen afspraak nodig. Het kan online: {product.online}"
    return f"Voor {product.in_sentence} hebt u geen afspraak nodig ({product.desk})."


def _where(catalogue: Catalogue, product: Product) -> str:
    locations = catalogue.locations_for(product.id)
    lines = [f"- {loc.name}, {loc.address}" for loc in locations]
    parts = []
    if lines:
        parts.append(f"U kunt hiervoor terecht bij de {product.desk} in:\n" + "\n".join(lines))
    else:
        parts.append(f"Hiervoor gaat u niet naar een loket van de stad, maar naar: {product.desk}.")
    if product.online:
        parts.append(f"Online: {product.online}")
    return "\n".join(parts)


def _delivery(catalogue: Catalogue, product: Product) -> str:
    return f"{product.name}: {product.delivery}"


def _follow_ups(product: Product, aspect: str) -> List[Button]:
    options = [
        ("price", "Wat kost het?", "ask_price"),
        ("documents", "Wat meebrengen?", "ask_documents"),
        ("where", "Waar?", "ask_where"),
    ]
    buttons = [
        {"title": title, "payload": payload(intent, product=product.id)}
        for key, title, intent in options
        if key != aspect
    ]
    if product.bookable:
        buttons.insert(0, {"title": "Afspraak maken", "payload": payload("book_appointment", product=product.id)})
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
        today_text = f"Vandaag is {location.name} gesloten ({closed_reason})."
    elif spans:
        today_text = f"Vandaag ({WEEKDAYS[today.weekday()]}) is {location.name} open: {_spans_text(spans)}."
    else:
        today_text = f"Vandaag ({WEEKDAYS[today.weekday()]}) is {location.name} gesloten."
    upcoming = [
        f"- {c.date.strftime('%d/%m')}: gesloten ({c.reason})"
        for c in catalogue.closing_days
        if 0 < (c.date - today).days <= 21 and (not c.locations or location.id in c.locations)
    ]
    text = f"Openingsuren {location.name} ({location.address}):\n{location.opening_hours_text()}\n{today_text}"
    if upcoming:
        text += "\nLet op, binnenkort:\n" + "\n".join(upcoming)
    text += f"\n{location.walk_in}"
    others = [loc for loc in catalogue.locations if loc.id != location.id][:4]
    return Answer(text, [{"title": loc.name, "payload": payload("ask_opening_hours", location=loc.id)} for loc in others])


def _spans_text(spans: List[str]) -> str:
    return " en ".join(span.replace("-", " tot ") for span in spans)


def location_answer(location: Location) -> Answer:
    return Answer(
        f"{location.name}\nAdres: {location.address}\n{location.walk_in}\nMeer info: {location.url}",
        [{"title": "Openingsuren", "payload": payload("ask_opening_hours", location=location.id)}],
    )


def locations_overview(catalogue: Catalogue) -> Answer:
    lines = "\n".join(f"- {loc.name}: {loc.address}" for loc in catalogue.locations)
    return Answer(
        f"U vindt ons hier:\n{lines}\nIn het Stadskantoor en de wijkkantoren kunt u zonder afspraak terecht aan het onthaal voor een eerste vraag.",
        [{"title": f"Openingsuren {loc.name}", "payload": payload("ask_opening_hours", location=loc.id)} for loc in catalogue.locations[:4]],
    )


def contact_text(catalogue: Catalogue) -> str:
    contact = catalogue.contact
    return (
        f"{contact.name} helpt u graag verder:\n- bel {contact.phone} ({contact.hours})\n- mail {contact.email}\n"
        f"- of kom langs aan het onthaal van het Stadskantoor of een wijkkantoor, zonder afspraak."
    )
