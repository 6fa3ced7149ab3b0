"""Graph API errors shaped like Meta's, and the codes the simulator uses.

``{"error": {"message", "type", "code", "error_subcode", "error_data": {"messaging_product",
"details"}, "fbtrace_id"}}`` with the HTTP status Meta documents for the code.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

# code -> (title, HTTP status)
CATALOGUE: dict[int, tuple[str, int]] = {
    1: ("An unknown error occurred", 400),
    4: ("Application request limit reached", 400),
    100: ("Invalid parameter", 400),
    190: ("Invalid OAuth access token - Cannot parse access token", 401),
    80007: ("Rate limit issues", 400),
    130429: ("Rate limit hit", 400),
    131000: ("Something went wrong", 500),
    131016: ("Service unavailable", 503),
    131026: ("Message undeliverable", 400),
    131047: ("Re-engagement message", 400),
    131048: ("Spam rate limit hit", 400),
    131049: ("This message was not delivered to maintain healthy ecosystem engagement.", 400),
    131050: (
        "Unable to deliver the message. This recipient has chosen to stop receiving "
        "marketing messages on WhatsApp from your business",
        400,
    ),
    131051: ("Unsupported message type", 400),
    131052: ("Media download error", 400),
    131053: ("Media upload error", 400),
    131056: ("(Business Account, Consumer Account) pair rate limit hit", 400),
    131057: ("Account in maintenance mode", 400),
    132000: ("Number of parameters does not match the expected number of params", 400),
    132001: ("Template name does not exist in the translation", 404),
    132005: ("Translated text too long", 400),
    132007: ("Template Format Character Policy Violated", 400),
    132012: ("Parameter format does not match format in the created template", 400),
    132015: ("Template is Paused", 400),
    132016: ("Template is disabled", 400),
    368: ("Temporarily blocked for policies violations", 400),
}

SUBCODES = {100: 2494010, 130429: 2494055, 131056: 2494055, 131047: 2494010, 190: 463}


def fbtrace_id() -> str:
    return secrets.token_urlsafe(20)[:27]


@dataclass
class GraphError(Exception):
    code: int
    details: str
    status: int | None = None
    subcode: int | None = None
    title: str | None = None
    type: str = "OAuthException"

    @property
    def http_status(self) -> int:
        return self.status or CATALOGUE.get(self.code, ("", 400))[1]

    @property
    def message(self) -> str:
        title = self.title or CATALOGUE.get(self.code, ("Error", 400))[0]
        return title if self.code == 190 else f"(#{self.code}) {title}"

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "code": self.code,
            "error_data": {"messaging_product": "whatsapp", "details": self.details},
            "error_subcode": self.subcode or SUBCODES.get(self.code, 2494010),
            "fbtrace_id": fbtrace_id(),
        }
        return {"error": error}

    def as_status_error(self) -> dict[str, Any]:
        """The same error as a status webhook's ``errors[]`` element."""
        title = self.title or CATALOGUE.get(self.code, ("Error", 400))[0]
        return {
            "code": self.code,
            "title": title,
            "message": title,
            "error_data": {"details": self.details},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        }

    def response(self) -> JSONResponse:
        body = self.body()
        headers = {"x-fb-trace-id": body["error"]["fbtrace_id"]}
        if self.code == 190:
            headers["www-authenticate"] = 'OAuth "Facebook Platform" "invalid_token" ' + (
                f'"{self.message}"'
            )
        return JSONResponse(body, status_code=self.http_status, headers=headers)


def invalid(details: str) -> GraphError:
    return GraphError(100, details)


def no_object(object_id: str, method: str = "get") -> GraphError:
    return GraphError(
        100,
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        subcode=33,
    )


def bad_token(details: str = "The access token could not be decrypted") -> GraphError:
    return GraphError(190, details)
