"""Deployment profiles: the one switch ``GENTINFO_PROFILE`` and the check of its environment.

``embedded`` (the default) runs everything in one place without accounts: Rasa's in-memory tracker
store, SQLite, channels only when their variables are set. ``production`` keeps conversations in
Redis (Rasa's ``RedisTrackerStore`` and ``RedisLockStore``, so any number of Rasa servers can serve
the same conversation and a restart loses nothing), bookings and KAFKA suggestions in PostgreSQL,
and refuses to start on an incomplete or unsafe configuration.

Everything comes from environment variables and is checked before anything starts::

    python -m bot.profile check        # what is missing or invalid, with the fix; exit 1 if anything
    python -m bot.profile env          # check, then print `export …` lines for scripts/run
    python -m bot.profile exec CMD...  # check, set the derived variables and exec CMD (containers)

Rasa substitutes ``${VAR}`` in ``endpoints.production.yml`` only in unquoted values and only when
VAR is set, and it cannot parse a URL there; so ``REDIS_URL`` (the one Redis setting) is split here
into ``REDIS_HOST``, ``REDIS_PORT``, ``REDIS_DB``, ``REDIS_USERNAME`` and ``REDIS_PASSWORD``.
No secret is ever printed by ``check``: URLs are shown without their password.
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence
from urllib.parse import unquote, urlsplit

from bot.core.console_users import ConfigError, load_users

ROOT = Path(__file__).resolve().parents[1]

PROFILE_ENV = "GENTINFO_PROFILE"
PROFILES = ("embedded", "production")
ENDPOINTS = {"embedded": "endpoints.yml", "production": "endpoints.production.yml"}

DEFAULT_ACTION_ENDPOINT = "http://127.0.0.1:5055/webhook"
#: How long Redis keeps a conversation after its last message (Rasa's ``record_exp``).
TTL_ENV = "GENTINFO_CONVERSATION_TTL_SECONDS"
DEFAULT_TTL_SECONDS = 30 * 24 * 3600
MIN_TTL_SECONDS = 3600
#: Shared secrets shorter than this are refused in production (the KAFKA API uses the same bound).
MIN_SECRET_CHARS = 32

WHATSAPP_VARS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_FROM")
TELEGRAM_VARS = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET")

_TWILIO_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_WHATSAPP_NUMBER = re.compile(r"^(?:whatsapp:)?\+[1-9]\d{6,14}$")
_TELEGRAM_TOKEN = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_PORT = re.compile(r"^\d{1,5}$")


@dataclass(frozen=True)
class RedisTarget:
    host: str
    port: int
    db: int
    username: str
    password: str

    def shown(self) -> str:
        auth = "(password) " if self.password else ""
        return f"{auth}{self.host}:{self.port}/{self.db}"


@dataclass
class Report:
    """The outcome of a check: problems (refuse to start), notes, and the variables to export."""

    profile: str
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    exports: Dict[str, str] = field(default_factory=dict)
    summary: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.ok:
            lines = [f"Gentinfo configuration OK (profile {self.profile})"]
            lines += [f"  {line}" for line in self.summary]
        else:
            count = len(self.problems)
            lines = [f"Gentinfo configuration (profile {self.profile}): {count} problem{'s' * (count != 1)}, not starting"]
            lines += [f"  - {problem}" for problem in self.problems]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def parse_redis_url(url: str, *, production: bool) -> RedisTarget:
    """``redis://[[user]:password@]host[:port][/db]`` -> its parts; ValueError with the reason."""
    try:
        parts = urlsplit(url)
        port = parts.port or 6379
    except ValueError as error:  # e.g. a port that is not a number
        raise ValueError(f"is not a valid URL ({error})") from None
    allowed = ("redis",) if production else ("redis", "rediss", "unix")
    if parts.scheme not in allowed:
        if parts.scheme == "rediss" and production:
            raise ValueError("must be redis://…: Rasa's Redis stores are configured without TLS here "
                             "(keep Redis on the cluster network, see docs/production.md)")
        raise ValueError(f"must start with {' or '.join(s + '://' for s in allowed)}")
    if parts.scheme == "unix":
        return RedisTarget(parts.path, 0, 0, "", unquote(parts.password or ""))
    if not parts.hostname:
        raise ValueError("has no host (redis://host:6379/0)")
    db_text = parts.path.lstrip("/") or "0"
    if not db_text.isdigit():
        raise ValueError(f"database must be a number (redis://host:6379/0), got {db_text!r}")
    if not 1 <= port <= 65535:
        raise ValueError("port must be from 1 to 65535")
    password = unquote(parts.password or "")
    username = unquote(parts.username or "")
    if any(char.isspace() for char in password + username):
        raise ValueError("user name and password must not contain spaces")
    return RedisTarget(parts.hostname, port, int(db_text), username, password)


def _shown_url(url: str) -> str:
    """A URL without its password, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable)"
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    return parts._replace(netloc=netloc).geturl()


def _http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check(environ: Mapping[str, str] = os.environ) -> Report:
    """Validate the environment for the profile it selects; never raises."""
    profile = (environ.get(PROFILE_ENV) or "embedded").strip().lower()
    if profile not in PROFILES:
        report = Report(profile=profile)
        report.problems.append(f"{PROFILE_ENV} must be one of {', '.join(PROFILES)} (got {profile!r})")
        return report
    report = Report(profile=profile)
    production = profile == "production"
    report.exports["GENTINFO_ENDPOINTS"] = ENDPOINTS[profile]
    _check_redis(environ, report, production)
    _check_database(environ, report, production)
    _check_action_endpoint(environ, report)
    _check_channels(environ, report, production)
    _check_other(environ, report, production)
    return report


def _check_redis(environ: Mapping[str, str], report: Report, production: bool) -> None:
    url = (environ.get("REDIS_URL") or "").strip()
    if not url:
        if production:
            report.problems.append(
                "REDIS_URL is not set: production keeps conversations, locks, de-duplication and handoff "
                "in Redis. Set REDIS_URL=redis://[:password@]host:6379/0"
            )
        else:
            report.summary.append("conversations in memory (no REDIS_URL): lost on restart, one process only")
        return
    try:
        target = parse_redis_url(url, production=production)
    except ValueError as error:
        report.problems.append(f"REDIS_URL {error} (got {_shown_url(url)})")
        return
    if production:
        ttl_raw = (environ.get(TTL_ENV) or "").strip()
        ttl = DEFAULT_TTL_SECONDS
        if ttl_raw:
            if not ttl_raw.isdigit() or int(ttl_raw) < MIN_TTL_SECONDS:
                report.problems.append(f"{TTL_ENV} must be a whole number of seconds, at least {MIN_TTL_SECONDS} "
                                       f"(got {ttl_raw!r})")
                return
            ttl = int(ttl_raw)
        report.exports.update(
            REDIS_HOST=target.host,
            REDIS_PORT=str(target.port),
            REDIS_DB=str(target.db),
            REDIS_USERNAME=target.username,
            REDIS_PASSWORD=target.password,
            **{TTL_ENV: str(ttl)},
        )
        report.summary.append(f"conversations and locks in Redis {target.shown()}, kept {ttl // 86400} days "
                              f"after the last message")
    else:
        report.summary.append(f"connector state and handoff in Redis {target.shown()}; conversations in memory")


def _check_database(environ: Mapping[str, str], report: Report, production: bool) -> None:
    url = (environ.get("GENTINFO_DATABASE_URL") or "").strip()
    if not url:
        if production:
            report.problems.append(
                "GENTINFO_DATABASE_URL is not set: production stores appointments and KAFKA suggestions in "
                "PostgreSQL. Set GENTINFO_DATABASE_URL=postgresql://user:password@host:5432/gentinfo"
            )
        else:
            report.summary.append("appointments and KAFKA suggestions in SQLite (var/gentinfo.db)")
        return
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    backend = scheme.split("+", 1)[0]
    if production and backend != "postgresql":
        report.problems.append(f"GENTINFO_DATABASE_URL must be postgresql://… in production "
                               f"(got {scheme or 'no scheme'}://…; SQLite is for the embedded profile)")
        return
    if backend not in ("postgresql", "sqlite"):
        report.problems.append(f"GENTINFO_DATABASE_URL must be postgresql://… or sqlite:///… (got {_shown_url(url)})")
        return
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception as error:
        report.problems.append(f"GENTINFO_DATABASE_URL cannot be parsed: {type(error).__name__}")
        return
    if backend == "postgresql" and (not parsed.host or not parsed.database):
        report.problems.append("GENTINFO_DATABASE_URL needs a host and a database (postgresql://user@host:5432/gentinfo)")
        return
    where = f"PostgreSQL {parsed.database} on {parsed.host}" if backend == "postgresql" else f"SQLite {parsed.database}"
    report.summary.append(f"appointments and KAFKA suggestions in {where}")


def _check_action_endpoint(environ: Mapping[str, str], report: Report) -> None:
    url = (environ.get("ACTION_ENDPOINT_URL") or "").strip()
    if url and not _http_url(url):
        report.problems.append(f"ACTION_ENDPOINT_URL must be http(s)://host:port/webhook (got {url!r})")
        return
    report.exports["ACTION_ENDPOINT_URL"] = url or DEFAULT_ACTION_ENDPOINT
    report.summary.append(f"action server {report.exports['ACTION_ENDPOINT_URL']}")


def _check_channels(environ: Mapping[str, str], report: Report, production: bool) -> None:
    channels = ["web chat", "REST"]
    public_url = (environ.get("GENTINFO_PUBLIC_URL") or "").strip()

    present = [name for name in WHATSAPP_VARS if environ.get(name)]
    if present:
        missing = [name for name in WHATSAPP_VARS if not environ.get(name)]
        if not public_url:
            missing.append("GENTINFO_PUBLIC_URL")
        if missing:
            report.problems.append(f"WhatsApp: {', '.join(missing)} missing (the WhatsApp variables come as a set: "
                                   f"{', '.join(WHATSAPP_VARS)}, GENTINFO_PUBLIC_URL)")
        before = len(report.problems)
        sid, token, sender = (environ.get(name, "").strip() for name in WHATSAPP_VARS)
        if sid and not _TWILIO_SID.match(sid):
            report.problems.append("TWILIO_ACCOUNT_SID must be AC followed by 32 hexadecimal characters")
        if token and (len(token) < MIN_SECRET_CHARS or any(c.isspace() for c in token)):
            report.problems.append(f"TWILIO_AUTH_TOKEN is too short ({len(token)} characters; Twilio's have 32)")
        if sender and not _WHATSAPP_NUMBER.match(sender):
            report.problems.append("TWILIO_WHATSAPP_FROM must be an international number, e.g. whatsapp:+3292101010")
        base = (environ.get("TWILIO_API_BASE_URL") or "").strip()
        if base and not _http_url(base):
            report.problems.append(f"TWILIO_API_BASE_URL must be an http(s) URL (got {base!r})")
        if not missing and len(report.problems) == before:
            channels.append("WhatsApp")
    elif production:
        report.notes.append("WhatsApp is off (no TWILIO_* variables): its webhook answers 503")

    present = [name for name in TELEGRAM_VARS if environ.get(name)]
    if present:
        missing = [name for name in TELEGRAM_VARS if not environ.get(name)]
        if missing:
            report.problems.append(f"Telegram: {', '.join(missing)} missing (the Telegram variables come as a set: "
                                   f"{', '.join(TELEGRAM_VARS)})")
        before = len(report.problems)
        token = (environ.get("TELEGRAM_BOT_TOKEN") or "").strip()
        secret = (environ.get("TELEGRAM_WEBHOOK_SECRET") or "").strip()
        if token and not _TELEGRAM_TOKEN.match(token):
            report.problems.append("TELEGRAM_BOT_TOKEN does not look like a token from @BotFather (123456:ABC…)")
        if secret and not _TELEGRAM_SECRET.match(secret):
            report.problems.append("TELEGRAM_WEBHOOK_SECRET may only contain A-Z a-z 0-9 _ - (at most 256)")
        elif secret and production and len(secret) < MIN_SECRET_CHARS:
            report.problems.append(f"TELEGRAM_WEBHOOK_SECRET is too short ({len(secret)} characters, at least "
                                   f"{MIN_SECRET_CHARS} in production; python -c \"import secrets; "
                                   f"print(secrets.token_urlsafe(32))\")")
        base = (environ.get("TELEGRAM_API_BASE_URL") or "").strip()
        if base and not _http_url(base.replace("{token}", "t")):
            report.problems.append(f"TELEGRAM_API_BASE_URL must be an http(s) URL (got {base!r})")
        if not missing and len(report.problems) == before:
            channels.append("Telegram")
    elif production:
        report.notes.append("Telegram is off (no TELEGRAM_* variables): its webhook answers 503")

    if public_url:
        if not _http_url(public_url):
            report.problems.append(f"GENTINFO_PUBLIC_URL must be the public URL, e.g. https://gentinfo.stad.gent "
                                   f"(got {public_url!r})")
        elif production and not public_url.startswith("https://"):
            report.problems.append("GENTINFO_PUBLIC_URL must be https://… in production (Twilio and Telegram "
                                   "call it over the internet)")

    origins = (environ.get("GENTINFO_WEBCHAT_ORIGINS") or "").strip()
    if production:
        listed = [origin.strip() for origin in origins.split(",") if origin.strip()]
        if not listed or "*" in listed:
            report.problems.append("GENTINFO_WEBCHAT_ORIGINS must list the sites that may embed the web chat in "
                                   "production, e.g. https://stad.gent,https://www.gent.be (not '*')")
        else:
            bad = [origin for origin in listed if not origin.startswith("https://") or not _http_url(origin)]
            if bad:
                report.problems.append(f"GENTINFO_WEBCHAT_ORIGINS: not https origins: {', '.join(bad)}")
    report.summary.append(f"channels: {', '.join(channels)}")


def _check_other(environ: Mapping[str, str], report: Report, production: bool) -> None:
    token = (environ.get("GENTINFO_KAFKA_API_TOKEN") or "").strip()
    if token and len(token) < MIN_SECRET_CHARS:
        report.problems.append(f"GENTINFO_KAFKA_API_TOKEN is too short ({len(token)} characters, at least "
                               f"{MIN_SECRET_CHARS}; python -c \"import secrets; print(secrets.token_urlsafe(32))\")")
    elif token:
        report.summary.append("KAFKA API for the city: on")
    retention = (environ.get("GENTINFO_KAFKA_RETENTION_DAYS") or "").strip()
    if retention and (not retention.isdigit() or int(retention) < 1):
        report.problems.append(f"GENTINFO_KAFKA_RETENTION_DAYS must be a whole number of days, at least 1 "
                               f"(got {retention!r})")
    users = (environ.get("GENTINFO_CONSOLE_USERS") or "").strip()
    if users:
        problem = _console_users_problem(users)
        if problem:
            report.problems.append(problem)
        elif not environ.get("REDIS_URL"):
            report.problems.append("GENTINFO_CONSOLE_USERS is set but REDIS_URL is not: the agent console needs Redis")
    if production and (environ.get("GENTINFO_CONSOLE_COOKIE_SECURE") or "").strip() == "0":
        report.problems.append("GENTINFO_CONSOLE_COOKIE_SECURE=0 is not allowed in production (cookies over http)")


def _console_users_problem(value: str) -> Optional[str]:
    """The agent console's own check of its accounts (``bot/core/console_users.py``)."""
    try:
        load_users(value)
    except ConfigError as error:
        return str(error)
    return None


def shell_exports(report: Report) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(report.exports.items()))


USAGE = """usage: python -m bot.profile check | env | exec COMMAND [ARG...]
  check  validate the environment of the profile in GENTINFO_PROFILE (embedded | production)
  env    check, then print `export …` lines (REDIS_HOST … from REDIS_URL) for a shell to eval
  exec   check, set those variables and replace this process with COMMAND (container entry point)"""


def main(argv: Sequence[str], environ: Optional[Mapping[str, str]] = None) -> int:
    environ = os.environ if environ is None else environ
    if not argv or argv[0] not in ("check", "env", "exec") or (argv[0] == "exec" and len(argv) < 2):
        print(USAGE, file=sys.stderr)
        return 2
    report = check(environ)
    if argv[0] == "check":
        print(report.text(), file=sys.stdout if report.ok else sys.stderr)
        return 0 if report.ok else 1
    if not report.ok:
        print(report.text(), file=sys.stderr)
        return 1
    if argv[0] == "env":
        print(report.text(), file=sys.stderr)
        print(shell_exports(report), end="")
        return 0
    print(report.text(), file=sys.stderr)
    command = list(argv[1:])
    if command[0] == "--":
        command = command[1:]
    os.environ.update(report.exports)
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
