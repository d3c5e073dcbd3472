"""Local stand-ins for the remote APIs the connectors talk to (Twilio, Telegram).

They run real HTTP servers on 127.0.0.1, so the real SDKs (twilio, python-telegram-bot) are
exercised end to end; only the far side of the wire is played.
"""

#: The public base URL the fakes (and the assistant under test) agree on. Twilio signs webhooks
#: against the URL it called; behind a proxy that is not the address the assistant listens on.
PUBLIC_URL = "https://gentinfo.test"
