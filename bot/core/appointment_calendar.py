"""What the citizen reads and imports about a booking: the slot in words, the confirmation, and the
RFC 5545 calendar file. Split from ``bot/core/appointments.py``, which re-exports these names.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional, Tuple

from bot.core.appointment_model import Booking, BookingStatus, NotBookable, Slot
from bot.core.catalogue import Catalogue, Location, Product, get_catalogue
from bot.core.dates import format_moment
from bot.core.texts import say


# -- texts and calendar file for the citizen ----------------------------------------------------------
def describe_slot(slot: Slot, catalogue: Catalogue, with_location: bool = False) -> str:
    """'dinsdag 1 december om 9.30 uur' (+ ' in Stadskantoor'), e.g. for a button."""
    text = format_moment(slot.starts_at)
    location = catalogue.location(slot.location_id)
    return say("appointments.slot_at_location", moment=text, location=location.name) if with_location and location else text


def booking_summary_nl(booking: Booking, catalogue: Catalogue) -> str:
    """The confirmation a citizen reads after booking or moving an appointment (B1, "u")."""
    product, location = _catalogue_entries(booking, catalogue)
    text = say("appointments.confirmation", product=product.name, when=format_moment(booking.starts_at),
               location=location.name, address=location.address, desk=product.desk, reference=booking.reference)
    if product.bring:
        text += "\n" + say("appointments.bring", items="; ".join(product.bring))
    return text


def to_ics(booking: Booking, catalogue: Optional[Catalogue] = None, now: Optional[datetime] = None) -> str:
    """An RFC 5545 calendar file for the booking (times in UTC, so no VTIMEZONE is needed).

    ``SEQUENCE`` is the booking's revision and ``UID`` its reference: after a move or a cancellation a
    new file replaces the old event in the citizen's calendar.
    """
    catalogue = catalogue or get_catalogue()
    product, location = _catalogue_entries(booking, catalogue)
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    description = [say("appointments.ics_reference", reference=booking.reference),
                   say("appointments.ics_desk", desk=product.desk)]
    if product.bring:
        description += [say("appointments.ics_bring"), *(f"- {item}" for item in product.bring)]
    description += [say("appointments.ics_change", gentinfo_phone=catalogue.contact.phone),
                    say("appointments.ics_more", url=product.url)]
    description_text = "\n".join(description)
    cancelled = booking.status is BookingStatus.cancelled
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Stad Gent//Gentinfo assistent//NL", "CALSCALE:GREGORIAN",
        f"METHOD:{'CANCEL' if cancelled else 'PUBLISH'}",
        "BEGIN:VEVENT",
        f"UID:{booking.reference}@gentinfo.stad.gent",
        f"SEQUENCE:{booking.revision}",
        f"DTSTAMP:{_ics_time(stamp)}",
        f"DTSTART:{_ics_time(booking.starts_at)}",
        f"DTEND:{_ics_time(booking.ends_at)}",
        f"SUMMARY:{_ics_text(say('appointments.ics_summary', product=product.name))}",
        f"LOCATION:{_ics_text(f'{location.name}, {location.address}')}",
        f"GEO:{location.latitude};{location.longitude}",
        f"DESCRIPTION:{_ics_text(description_text)}",
        f"URL:{location.url}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        "END:VEVENT", "END:VCALENDAR",
    ]
    return "".join(_ics_fold(line) + "\r\n" for line in lines)


def _catalogue_entries(booking: Booking, catalogue: Catalogue) -> Tuple[Product, Location]:
    product, location = catalogue.product(booking.product_id), catalogue.location(booking.location_id)
    if product is None or location is None:
        raise NotBookable(f"{booking.reference}: product or location left the catalogue")
    return product, location


def _ics_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _ics_text(value: str) -> str:
    """TEXT escaping of RFC 5545 3.3.11: backslash, semicolon, comma and newline."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\n").replace("\n", "\\n"))


def _ics_fold(line: str, limit: int = 75) -> str:
    """Fold at 75 octets (RFC 5545 3.1) without splitting a UTF-8 character."""
    parts, current, size = [], "", 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size = " ", 1
        current += char
        size += width
    parts.append(current)
    return "\r\n".join(parts)
