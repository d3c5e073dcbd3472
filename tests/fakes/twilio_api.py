"""A local Twilio: the Messages API our connector calls, and the webhooks Twilio sends us.

The API part answers ``POST /2010-04-01/Accounts/{sid}/Messages.json`` like Twilio does: HTTP basic
auth with the account SID and auth token, form-encoded fields, a 201 with a message resource, and
Twilio's error JSON (e.g. 21617 for a body over 1,600 characters). The webhook part builds the form
Twilio posts for an incoming WhatsApp message and signs it with twilio's own ``RequestValidator``.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import requests
from aiohttp import BasicAuth, web
from twilio.request_validator import RequestValidator

from tests.fakes import PUBLIC_URL
from tests.fakes.background import ApiCall, FakeApi

API_VERSION = "2010-04-01"
WEBHOOK_PATH = "/webhooks/whatsapp/webhook"
CITIZEN = "whatsapp:+32470123456"
MAX_BODY = 1600


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
        status=status,
    )


class FakeTwilio(FakeApi):
    """Plays Twilio for one account and one WhatsApp sender."""

    def __init__(self) -> None:
        self.account_sid = _sid("AC")
        self.auth_token = secrets.token_hex(16)
        self.whatsapp_from = "whatsapp:+14155238886"
        self.public_url = PUBLIC_URL
        app = web.Application()
        app.router.add_post(f"/{API_VERSION}/Accounts/{{sid}}/Messages.json", self._create_message)
        super().__init__(app)

    # -- inspection -------------------------------------------------------------------------------
    def wait_for(self, count: int, timeout: float = 5.0) -> List[ApiCall]:
        """The first ``count`` API requests; fails after ``timeout`` seconds."""
        return self._recorder.wait_for(count, timeout)

    def env(self) -> Dict[str, str]:
        """What the WhatsApp connector needs to use this fake instead of Twilio."""
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_WHATSAPP_FROM": self.whatsapp_from,
            "TWILIO_API_BASE_URL": self.url,
            "GENTINFO_PUBLIC_URL": self.public_url,
        }

    # -- the Messages API ------------------------------------------------------------------------
    async def _create_message(self, request: web.Request) -> web.Response:
        form = await request.post()
        lists: Dict[str, List[str]] = {}
        for key, value in form.items():
            lists.setdefault(key, []).append(str(value))
        call = ApiCall(
            method=request.method, path=request.path, endpoint="Messages.json",
            params={k: v[-1] for k, v in lists.items()}, lists=lists, headers=dict(request.headers),
        )
        response = self._answer(request, call)
        call.status = response.status
        self._recorder.add(call)
        return response

    def _answer(self, request: web.Request, call: ApiCall) -> web.Response:
        try:
            auth = BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            auth = None
        if auth is None or (auth.login, auth.password) != (self.account_sid, self.auth_token):
            return _error(401, 20003, "Authenticate")
        if request.match_info["sid"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        params = call.params
        if not params.get("To"):
            return _error(400, 21604, "A 'To' phone number is required.")
        if not params.get("From") and not params.get("MessagingServiceSid"):
            return _error(400, 21603, "A 'From' phone number is required.")
        if not (params.get("Body") or call.lists.get("MediaUrl") or params.get("ContentSid")):
            return _error(400, 21602, "Message body is required.")
        if len(params.get("Body", "")) > MAX_BODY:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        return web.json_response(self._resource(call), status=201)

    def _resource(self, call: ApiCall) -> Dict[str, object]:
        sid = _sid("SM")
        now = format_datetime(datetime.now(timezone.utc), usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": call.params.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": call.params.get("From"),
            "messaging_service_sid": call.params.get("MessagingServiceSid"),
            "num_media": str(len(call.lists.get("MediaUrl", []))),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": call.params.get("To"),
            "uri": f"{uri}.json",
        }

    # -- webhooks, as Twilio sends them ---------------------------------------------------------
    def incoming(
        self,
        body: str = "",
        *,
        sender: str = CITIZEN,
        profile_name: str = "Citizen",
        media: Sequence[Tuple[str, str]] = (),
        location: Optional[Tuple[float, float]] = None,
        button_payload: Optional[str] = None,
        message_sid: Optional[str] = None,
    ) -> Dict[str, str]:
        """The form Twilio posts for an incoming WhatsApp message; ``media`` holds (url, type)."""
        sid = message_sid or _sid("SM")
        params = {
            "SmsMessageSid": sid, "MessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid,
            "From": sender, "To": self.whatsapp_from, "Body": body, "ProfileName": profile_name,
            "WaId": sender.rsplit("+", 1)[-1], "NumMedia": str(len(media)), "NumSegments": "1",
            "ReferralNumMedia": "0", "SmsStatus": "received", "ApiVersion": API_VERSION,
        }
        for index, (url, content_type) in enumerate(media):
            params[f"MediaUrl{index}"] = url
            params[f"MediaContentType{index}"] = content_type
        if location is not None:
            params["Latitude"], params["Longitude"] = (str(value) for value in location)
        if button_payload is not None:
            params["ButtonPayload"] = params["ButtonText"] = button_payload
        return params

    def signature(self, params: Mapping[str, str], auth_token: Optional[str] = None) -> str:
        """``X-Twilio-Signature`` for our webhook URL as the public sees it."""
        validator = RequestValidator(auth_token or self.auth_token)
        return validator.compute_signature(self.public_url + WEBHOOK_PATH, dict(params))

    def deliver(
        self, server_url: str, params: Mapping[str, str], *, sign: bool = True, auth_token: Optional[str] = None
    ) -> requests.Response:
        """POST a webhook to the assistant at ``server_url`` (signed unless ``sign`` is False;
        ``auth_token`` forges a signature with another token)."""
        headers = {"X-Twilio-Signature": self.signature(params, auth_token)} if sign else {}
        return requests.post(server_url.rstrip("/") + WEBHOOK_PATH, data=dict(params), headers=headers, timeout=30)
