"""The deployment profile switch: checking the environment, deriving Rasa's endpoint variables."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from bot import profile

ROOT = Path(__file__).resolve().parents[1]
TOKEN_32 = "t" * 32


def production(**overrides: str) -> Dict[str, str]:
    env = {
        "GENTINFO_PROFILE": "production",
        "REDIS_URL": "redis://:s3cret-pass@redis.gentinfo:6380/2",
        "GENTINFO_DATABASE_URL": "postgresql://gentinfo:pw@postgres:5432/gentinfo",
        "GENTINFO_WEBCHAT_ORIGINS": "https://stad.gent,https://www.gent.be",
        "GENTINFO_PUBLIC_URL": "https://gentinfo.stad.gent",
        "TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
        "TWILIO_AUTH_TOKEN": "0123456789abcdef" * 2,
        "TWILIO_WHATSAPP_FROM": "whatsapp:+3292101010",
        "TELEGRAM_BOT_TOKEN": "123456789:" + "A" * 35,
        "TELEGRAM_WEBHOOK_SECRET": "s" * 40,
        "ACTION_ENDPOINT_URL": "http://gentinfo-actions:5055/webhook",
    }
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def problems(env: Dict[str, str]) -> str:
    return "\n".join(profile.check(env).problems)


def test_embedded_default_needs_nothing() -> None:
    report = profile.check({})
    assert report.ok and report.profile == "embedded"
    assert report.exports["GENTINFO_ENDPOINTS"] == "endpoints.yml"
    assert "REDIS_HOST" not in report.exports


def test_complete_production_environment_passes_and_derives_redis_variables() -> None:
    report = profile.check(production())
    assert report.ok, report.text()
    assert report.exports["GENTINFO_ENDPOINTS"] == "endpoints.production.yml"
    assert {k: report.exports[k] for k in ("REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_USERNAME", "REDIS_PASSWORD")} == {
        "REDIS_HOST": "redis.gentinfo", "REDIS_PORT": "6380", "REDIS_DB": "2", "REDIS_USERNAME": "",
        "REDIS_PASSWORD": "s3cret-pass",
    }
    assert report.exports[profile.TTL_ENV] == str(profile.DEFAULT_TTL_SECONDS)
    assert "WhatsApp" in report.text() and "Telegram" in report.text()
    assert "s3cret-pass" not in report.text(), "the summary must never show a secret"


def test_empty_production_environment_lists_everything_missing_at_once() -> None:
    report = profile.check({"GENTINFO_PROFILE": "production"})
    text = report.text()
    assert not report.ok
    for expected in ("REDIS_URL is not set", "GENTINFO_DATABASE_URL is not set", "GENTINFO_WEBCHAT_ORIGINS"):
        assert expected in text
    assert "3 problems" in text


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"REDIS_URL": "http://redis:6379"}, "REDIS_URL must start with redis://"),
        ({"REDIS_URL": "rediss://redis:6380/0"}, "REDIS_URL must be redis://"),
        ({"REDIS_URL": "redis://redis:6379/zero"}, "database must be a number"),
        ({"REDIS_URL": "redis://redis:99999/0"}, "REDIS_URL is not a valid URL"),
        ({"REDIS_URL": "redis:///0"}, "has no host"),
        ({"GENTINFO_DATABASE_URL": "sqlite:///var/gentinfo.db"}, "must be postgresql://… in production"),
        ({"GENTINFO_DATABASE_URL": "postgresql://gentinfo@/"}, "needs a host and a database"),
        ({"TWILIO_AUTH_TOKEN": None}, "WhatsApp: TWILIO_AUTH_TOKEN missing"),
        ({"GENTINFO_PUBLIC_URL": None}, "WhatsApp: GENTINFO_PUBLIC_URL missing"),
        ({"TWILIO_AUTH_TOKEN": "short"}, "TWILIO_AUTH_TOKEN is too short"),
        ({"TWILIO_ACCOUNT_SID": "XX123"}, "TWILIO_ACCOUNT_SID must be AC"),
        ({"TWILIO_WHATSAPP_FROM": "09 210 10 10"}, "TWILIO_WHATSAPP_FROM must be an international number"),
        ({"TELEGRAM_WEBHOOK_SECRET": None}, "Telegram: TELEGRAM_WEBHOOK_SECRET missing"),
        ({"TELEGRAM_WEBHOOK_SECRET": "short-secret"}, "TELEGRAM_WEBHOOK_SECRET is too short"),
        ({"TELEGRAM_WEBHOOK_SECRET": "s" * 33 + "!"}, "may only contain"),
        ({"TELEGRAM_BOT_TOKEN": "not-a-token"}, "TELEGRAM_BOT_TOKEN does not look like"),
        ({"GENTINFO_PUBLIC_URL": "http://gentinfo.stad.gent"}, "must be https://… in production"),
        ({"GENTINFO_WEBCHAT_ORIGINS": "*"}, "GENTINFO_WEBCHAT_ORIGINS must list"),
        ({"GENTINFO_WEBCHAT_ORIGINS": "http://stad.gent"}, "not https origins"),
        ({"ACTION_ENDPOINT_URL": "gentinfo-actions:5055"}, "ACTION_ENDPOINT_URL must be http"),
        ({"GENTINFO_KAFKA_API_TOKEN": "1234"}, "GENTINFO_KAFKA_API_TOKEN is too short"),
        ({profile.TTL_ENV: "60"}, "GENTINFO_CONVERSATION_TTL_SECONDS must be"),
        ({"GENTINFO_CONSOLE_COOKIE_SECURE": "0"}, "not allowed in production"),
        ({"GENTINFO_PROFILE": "staging"}, "GENTINFO_PROFILE must be one of embedded, production"),
    ],
)
def test_invalid_production_values_are_named_with_the_fix(overrides: Dict[str, str], expected: str) -> None:
    assert expected in problems(production(**overrides))


def test_channels_are_optional_but_come_in_complete_sets() -> None:
    without = production(TWILIO_ACCOUNT_SID=None, TWILIO_AUTH_TOKEN=None, TWILIO_WHATSAPP_FROM=None,
                         TELEGRAM_BOT_TOKEN=None, TELEGRAM_WEBHOOK_SECRET=None)
    report = profile.check(without)
    assert report.ok, report.text()
    assert any("WhatsApp is off" in note for note in report.notes)


def test_embedded_profile_checks_only_what_is_set() -> None:
    assert profile.check({"REDIS_URL": "rediss://redis:6380/0"}).ok  # TLS is fine for the connectors
    assert "TELEGRAM_WEBHOOK_SECRET missing" in problems({"TELEGRAM_BOT_TOKEN": "123456789:" + "A" * 35})
    assert profile.check({"TELEGRAM_BOT_TOKEN": "123456789:" + "A" * 35, "TELEGRAM_WEBHOOK_SECRET": "short"}).ok


def test_redis_url_with_user_and_escaped_password() -> None:
    target = profile.parse_redis_url("redis://gentinfo:p%40ss%3Aword@10.0.0.5/3", production=True)
    assert (target.host, target.port, target.db, target.username, target.password) == (
        "10.0.0.5", 6379, 3, "gentinfo", "p@ss:word")


def test_env_prints_shell_exports_that_a_shell_can_eval() -> None:
    env = {**os.environ, **production(REDIS_URL="redis://:it's$ecret@redis:6379/0")}
    run = subprocess.run([sys.executable, "-m", "bot.profile", "env"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    assert "OK (profile production)" in run.stderr
    shell = subprocess.run(["bash", "-c", f'{run.stdout}\nprintf "%s|%s|%s" "$REDIS_HOST" "$REDIS_PASSWORD" '
                                          f'"$GENTINFO_ENDPOINTS"'], capture_output=True, text=True, check=True)
    assert shell.stdout == "redis|it's$ecret|endpoints.production.yml"


def test_check_command_exits_1_with_the_list_of_problems() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "GENTINFO_DATABASE_URL")}
    env["GENTINFO_PROFILE"] = "production"
    run = subprocess.run([sys.executable, "-m", "bot.profile", "check"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert "REDIS_URL is not set" in run.stderr and "GENTINFO_DATABASE_URL is not set" in run.stderr


def test_production_endpoints_resolve_through_rasas_own_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa substitutes the exported variables; an empty password stays empty (no AUTH)."""
    from rasa.core.utils import read_endpoints_from_path

    report = profile.check(production(REDIS_URL="redis://redis.gentinfo:6379/4"))
    for name, value in report.exports.items():
        monkeypatch.setenv(name, value)
    endpoints = read_endpoints_from_path(str(ROOT / "endpoints.production.yml"))
    assert endpoints.tracker_store.type == "bot.stores.GentinfoRedisTrackerStore"
    assert endpoints.lock_store.type == "bot.stores.GentinfoRedisLockStore"
    for store in (endpoints.tracker_store, endpoints.lock_store):
        assert store.url == "redis.gentinfo"
        assert store.kwargs["port"] == "6379" and store.kwargs["db"] == "4"
        assert store.kwargs["password"] == "" and store.kwargs["key_prefix"] == "gentinfo"
    assert endpoints.tracker_store.kwargs["record_exp"] == str(profile.DEFAULT_TTL_SECONDS)
    assert endpoints.action.url == "http://gentinfo-actions:5055/webhook"


def test_every_variable_in_the_production_endpoints_is_exported() -> None:
    import re

    lines = (ROOT / "endpoints.production.yml").read_text().splitlines()
    config = "\n".join(line.split("#", 1)[0] for line in lines)
    used = set(re.findall(r"\$\{(\w+)\}", config))
    assert used and used <= set(profile.check(production()).exports)
    # Quoted values are not substituted by Rasa 3.6: none may be quoted.
    assert not re.search(r"[\"']\$\{", config)


def test_scripts_run_stops_on_an_incomplete_production_environment(tmp_path: Path) -> None:
    """The switch in scripts/run: the check runs before training or starting anything."""
    stamp = ROOT / ".venv" / ".lock-sha256"
    import hashlib

    if not stamp.exists() or stamp.read_text().strip() != hashlib.sha256((ROOT / "requirements.lock").read_bytes()).hexdigest():
        pytest.skip("the venv is not in step with requirements.lock: scripts/run would install first")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "GENTINFO_DATABASE_URL")}
    env.update(GENTINFO_PROFILE="production", RASA_PORT="1", ACTION_PORT="1")
    run = subprocess.run(["bash", str(ROOT / "scripts" / "run")], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1
    assert "REDIS_URL is not set" in run.stderr and "not starting" in run.stderr
    assert "Starting" not in run.stderr
