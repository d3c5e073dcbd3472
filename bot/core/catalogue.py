"""The catalogue of city products, services, locations and Gentinfo contact details.

Content lives in ``bot/data/content/catalogue.yml`` so that the Publiekszaken content team edits
answers without touching code. ``python -m bot.core.catalogue validate`` checks the file and exits
non-zero on a broken entry; the test-suite runs the same check.
"""
from __future__ import annotations

import re
import sys
import unicodedata
from datetime import date, time
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml
from pydantic import BaseModel, HttpUrl, ValidationError, root_validator, validator

CATALOGUE_PATH = Path(__file__).resolve().parents[1] / "data" / "content" / "catalogue.yml"

WEEKDAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


def check_weekly_hours(value: Dict[str, List[str]]) -> Dict[str, List[str]]:
    """Validate ``{weekday: ["HH:MM-HH:MM", ...]}`` (opening hours, agents' hours)."""
    for day, ranges in value.items():
        if day not in WEEKDAYS:
            raise ValueError(f"unknown weekday {day!r} (use {', '.join(WEEKDAYS)})")
        for span in ranges:
            if not _HOURS.match(span):
                raise ValueError(f"{day}: {span!r} is not HH:MM-HH:MM")
            start, end = span.split("-")
            if start >= end:
                raise ValueError(f"{day}: {span!r} ends before it starts")
    return value


class Appointment(str, Enum):
    """Whether a citizen must book before coming to a desk."""

    required = "required"  # only with an appointment
    recommended = "recommended"  # walk-in possible, appointment saves waiting
    not_needed = "not_needed"  # walk-in (e.g. snelbalie) or fully online


class Contact(BaseModel):
    name: str
    phone: str
    email: str
    hours: str
    url: HttpUrl


class Location(BaseModel):
    id: str
    name: str
    kind: str  # stadskantoor | wijkkantoor | dienstencentrum
    address: str
    desks: List[str] = []
    #: weekday name -> list of "HH:MM-HH:MM" ranges; a missing day is closed.
    opening_hours: Dict[str, List[str]]
    #: walk-in reception without an appointment (first reception, snelbalie)
    walk_in: str
    synonyms: List[str] = []
    latitude: float
    longitude: float
    url: HttpUrl

    _hours_well_formed = validator("opening_hours", allow_reuse=True)(check_weekly_hours)

    def hours_on(self, weekday: int) -> List[Tuple[time, time]]:
        """Opening ranges on a weekday (0 = Monday)."""
        spans = self.opening_hours.get(WEEKDAYS[weekday], [])
        return [tuple(time.fromisoformat(part) for part in span.split("-")) for span in spans]  # type: ignore[misc]

    def opening_hours_text(self) -> str:
        lines = []
        for day in WEEKDAYS:
            spans = self.opening_hours.get(day)
            text = " en ".join(s.replace("-", " tot ").replace(":", "u", 1).replace(":", "u") for s in spans) if spans else "gesloten"
            lines.append(f"- {day}: {text}")
        return "\n".join(lines)


class Product(BaseModel):
    id: str
    name: str
    synonyms: List[str]
    summary: str
    who: str
    bring: List[str]
    price: str
    delivery: str
    appointment: Appointment
    desk: str
    locations: List[str]
    #: minutes a desk needs for one citizen; required when appointments are possible
    slot_minutes: Optional[int] = None
    online: Optional[str] = None
    url: HttpUrl

    @root_validator(skip_on_failure=True)
    def _slot_length_when_bookable(cls, values: dict) -> dict:
        if values["appointment"] != Appointment.not_needed and not values.get("slot_minutes"):
            raise ValueError("slot_minutes is required when an appointment is possible")
        price = values["price"].lower()
        if "indicatief" not in price and not price.startswith("gratis"):
            raise ValueError("price must say it is 'indicatief' (or start with 'gratis')")
        return values

    @property
    def in_sentence(self) -> str:
        """The name inside a sentence: "identiteitskaart (eID)", but "PIN- en PUK-code" stays."""
        name = self.name
        return name[0].lower() + name[1:] if name[1:2].islower() else name

    @property
    def bookable(self) -> bool:
        return self.appointment != Appointment.not_needed and bool(self.locations)


class ClosingDay(BaseModel):
    date: date
    reason: str
    locations: List[str] = []  # empty: every location


class Catalogue(BaseModel):
    contact: Contact
    locations: List[Location]
    products: List[Product]
    closing_days: List[ClosingDay] = []

    @root_validator(skip_on_failure=True)
    def _references_resolve(cls, values: dict) -> dict:
        location_ids = [loc.id for loc in values["locations"]]
        product_ids = [p.id for p in values["products"]]
        for kind, ids in (("location", location_ids), ("product", product_ids)):
            dupes = {i for i in ids if ids.count(i) > 1}
            if dupes:
                raise ValueError(f"duplicate {kind} ids: {sorted(dupes)}")
        for product in values["products"]:
            unknown = set(product.locations) - set(location_ids)
            if unknown:
                raise ValueError(f"product {product.id}: unknown locations {sorted(unknown)}")
        for closing in values["closing_days"]:
            unknown = set(closing.locations) - set(location_ids)
            if unknown:
                raise ValueError(f"closing day {closing.date}: unknown locations {sorted(unknown)}")
        seen: Dict[str, str] = {}
        for item in [*values["products"], *values["locations"]]:
            for term in [item.id, item.name, *item.synonyms]:
                key = normalise(term)
                if seen.setdefault(key, item.id) != item.id:
                    raise ValueError(f"term {term!r} points to both {seen[key]} and {item.id}")
        return values

    # -- look-ups -------------------------------------------------------------------------------
    def product(self, product_id: str) -> Optional[Product]:
        return next((p for p in self.products if p.id == product_id), None)

    def location(self, location_id: str) -> Optional[Location]:
        return next((loc for loc in self.locations if loc.id == location_id), None)

    def bookable_products(self) -> List[Product]:
        return [p for p in self.products if p.bookable]

    def locations_for(self, product_id: str) -> List[Location]:
        product = self.product(product_id)
        return [loc for loc in self.locations if product and loc.id in product.locations]

    def find_product(self, text: str) -> Optional[Product]:
        """The product a free text mentions (longest matching term wins), tolerant of case and accents."""
        return _best_match(text, self.products)

    def find_location(self, text: str) -> Optional[Location]:
        return _best_match(text, self.locations)


def normalise(text: str) -> str:
    """Lower case, accents stripped, punctuation to spaces: 'Kids-ID' and 'kids id' compare equal."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _best_match(text: str, items):  # type: ignore[no-untyped-def]
    haystack = f" {normalise(text)} "
    best, best_len = None, 0
    for item in items:
        for term in [item.id, item.name, *item.synonyms]:
            needle = normalise(term)
            if needle and f" {needle} " in haystack and len(needle) > best_len:
                best, best_len = item, len(needle)
    return best


def load(path: Path = CATALOGUE_PATH) -> Catalogue:
    with path.open(encoding="utf-8") as handle:
        return Catalogue.parse_obj(yaml.safe_load(handle))


@lru_cache(maxsize=1)
def file_catalogue() -> Catalogue:
    """The catalogue file, read once per process."""
    return load(CATALOGUE_PATH)


def get_catalogue() -> Catalogue:
    """The catalogue (actions call this on every turn): the newest version published in the content
    studio, else the file (bot/core/content_store.py; late import, it validates with this module)."""
    from bot.core.content_store import live

    return live("catalogue", file_catalogue)


def main(argv: List[str]) -> int:
    if len(argv) < 1 or argv[0] != "validate":
        print("usage: python -m bot.core.catalogue validate [PATH]", file=sys.stderr)
        return 2
    path = Path(argv[1]) if len(argv) > 1 else CATALOGUE_PATH
    try:
        catalogue = load(path)
    except (ValidationError, yaml.YAMLError, OSError) as error:
        print(f"catalogue {path} is broken:\n{error}", file=sys.stderr)
        return 1
    print(f"catalogue OK: {len(catalogue.products)} products, {len(catalogue.locations)} locations")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
