"""A terminal chat with a running assistant over Rasa's REST channel (``scripts/chat``)."""
from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any, Dict, List

import aiohttp


async def send(session: aiohttp.ClientSession, url: str, sender: str, text: str) -> List[Dict[str, Any]]:
    async with session.post(url, json={"sender": sender, "message": text}) as response:
        response.raise_for_status()
        return await response.json()


def show(messages: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    buttons: List[Dict[str, str]] = []
    for message in messages:
        if message.get("text"):
            print(f"Gentinfo: {message['text']}")
        if message.get("image"):
            print(f"Gentinfo: [afbeelding] {message['image']}")
        for number, button in enumerate(message.get("buttons") or [], start=len(buttons) + 1):
            print(f"   {number}. {button['title']}")
            buttons.append(button)
    return buttons


async def chat(url: str) -> None:
    sender = f"terminal:{uuid.uuid4()}"
    print("Typ uw vraag (of het nummer van een knop). Stoppen: Ctrl-D.")
    buttons: List[Dict[str, str]] = []
    async with aiohttp.ClientSession() as session:
        text = "/greet"
        while True:
            try:
                buttons = show(await send(session, url, sender, text)) or buttons
            except aiohttp.ClientError as error:
                print(f"(Geen verbinding met de assistent op {url}: {error}. Draait scripts/run?)")
            try:
                text = (await asyncio.to_thread(input, "U: ")).strip()
            except EOFError:
                return
            if text.isdigit() and 0 < int(text) <= len(buttons):
                text = buttons[int(text) - 1]["payload"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://localhost:5005/webhooks/rest/webhook")
    asyncio.run(chat(parser.parse_args().url))


if __name__ == "__main__":
    main()
