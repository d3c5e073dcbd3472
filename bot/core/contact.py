"""Check and normalise how a citizen can be reached: a Belgian phone number or an e-mail address.

Normalised values (E.164 for phones, lower case for e-mail) are what we store and what we compare
when a citizen later looks up, moves or cancels an appointment. ``mask`` keeps them out of logs.
No network is used: an e-mail address is checked on its form only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from bot.core.texts import say

REGION = "BE"
#: Numbers we can call back; premium (0900), toll-free (0800) and 078 numbers are refused.
_CALLABLE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
MASK = "\u2022"

_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")


class ContactKind(str, Enum):
    phone = "phone"
    email = "email"


@dataclass(frozen=True)
class ContactDetail:
    kind: ContactKind
    value: str  # normalised: "+32470123456" or "jan.peeters@stad.gent"


class InvalidContact(ValueError):
    """The text is not a usable phone number or e-mail address (message is for logs, not citizens)."""

    def __init__(self, kind: ContactKind, reason: str) -> None:
        super().__init__(f"invalid {kind.value}: {reason}")
        self.kind = kind

    @property
    def message_nl(self) -> str:
        return say("common.invalid_email" if self.kind is ContactKind.email else "common.invalid_phone")


def normalise_phone(text: str) -> str:
    """A Belgian mobile or fixed number in E.164 ('0470 12 34 56', '0032 470…' -> '+32470123456')."""
    try:
        number = phonenumbers.parse(text.strip(), REGION)
    except NumberParseException as error:
        raise InvalidContact(ContactKind.phone, "cannot be parsed") from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact(ContactKind.phone, "not a valid number")
    if phonenumbers.region_code_for_number(number) != REGION:
        raise InvalidContact(ContactKind.phone, "not a Belgian number")
    if phonenumbers.number_type(number) not in _CALLABLE_TYPES:
        raise InvalidContact(ContactKind.phone, "not a mobile or fixed line")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalise_email(text: str) -> str:
    """A syntactically sound address, lower case, domain in ASCII (IDN as punycode)."""
    value = text.strip().strip("<>").strip()
    if value.lower().startswith("mailto:"):
        value = value[len("mailto:"):]
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise InvalidContact(ContactKind.email, "no local part and domain")
    try:
        domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as error:
        raise InvalidContact(ContactKind.email, "domain cannot be encoded") from error
    local = local.lower()
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        raise InvalidContact(ContactKind.email, "local part")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels) or not _TLD.fullmatch(labels[-1]):
        raise InvalidContact(ContactKind.email, "domain")
    address = f"{local}@{domain}"
    if len(address) > 254:
        raise InvalidContact(ContactKind.email, "too long")
    return address


def normalise_contact(text: str) -> ContactDetail:
    """Either kind, told apart by the '@': what a citizen types when asked "telefoon of e-mail?"."""
    if "@" in text:
        return ContactDetail(ContactKind.email, normalise_email(text))
    return ContactDetail(ContactKind.phone, normalise_phone(text))


def mask(value: str) -> str:
    """A log-safe form: '+32 4•• •• •• 56', 'j•••@stad.gent'. Never raises."""
    if "@" in value:
        local, _, domain = value.strip().rpartition("@")
        return f"{local[:1]}{MASK * 3}@{domain}"
    try:
        number = phonenumbers.parse(value.strip(), REGION)
    except NumberParseException:
        return MASK * 3
    country, _, national = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL).partition(" ")
    digits = [i for i, char in enumerate(national) if char.isdigit()]
    if len(digits) < 5:
        return MASK * 3
    hidden = set(digits[1:-2])
    return f"{country} " + "".join(MASK if i in hidden else char for i, char in enumerate(national))
