"""Start the real assistant (Rasa server + action server) for end-to-end tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import requests

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}; see {log}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout} s; see {log}")


def text_of(messages: List[Dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def button(messages: List[Dict[str, Any]], title: str) -> str:
    """The payload of the button with this title (exact), as a tap would send it."""
    for message in messages:
        for item in message.get("buttons") or []:
            if item["title"] == title:
                return item["payload"]
    raise AssertionError(f"no button {title!r} in {messages}")


@dataclass
class Assistant:
    """A running assistant: ``url`` is the Rasa server's base URL."""

    url: str
    action_url: str
    env: Dict[str, str]
    processes: List[subprocess.Popen] = field(default_factory=list)

    def rest(self, sender: str, text: str, timeout: float = 30) -> List[Dict[str, Any]]:
        """Send one message over the standard REST channel; the bot's messages."""
        response = requests.post(
            f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=timeout
        )
        response.raise_for_status()
        return response.json()

    def texts(self, sender: str, text: str) -> str:
        return text_of(self.rest(sender, text))

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def start_assistant(model: Path, extra_env: Optional[Mapping[str, str]] = None) -> Assistant:
    """Start action server and Rasa server on free ports with ``credentials.yml``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rasa_port, action_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "RASA_TELEMETRY_ENABLED": "false",
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
        **(extra_env or {}),
    }
    assistant = Assistant(f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{action_port}", env)
    action_log = (ARTIFACTS / "action_server.log").open("w")
    rasa_log = (ARTIFACTS / "rasa_server.log").open("w")
    assistant.processes.append(
        subprocess.Popen(
            # the same action server as scripts/run: rasa-sdk's app plus /metrics and turn replay
            [sys.executable, "-m", "bot.action_server", "--actions", "bot.actions", "--port", str(action_port)],
            cwd=ROOT, env=env, stdout=action_log, stderr=subprocess.STDOUT,
        )
    )
    assistant.processes.append(
        subprocess.Popen(
            [
                sys.executable, "-m", "rasa", "run", "--model", str(model), "--port", str(rasa_port),
                "--interface", "127.0.0.1", "--credentials", "credentials.yml", "--endpoints", "endpoints.yml",
                # Rasa's HTTP API (loopback only, tests): tests/test_knowledge_eval.py reads the tracker
                "--enable-api",
            ],
            cwd=ROOT, env=env, stdout=rasa_log, stderr=subprocess.STDOUT,
        )
    )
    try:
        wait_for(f"{assistant.action_url}/health", assistant.processes[0], ARTIFACTS / "action_server.log")
        wait_for(f"{assistant.url}/webhooks/ops/ready", assistant.processes[1], ARTIFACTS / "rasa_server.log")
    except Exception:
        assistant.stop()
        raise
    return assistant
