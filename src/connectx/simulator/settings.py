"""What the simulator is configured with: Meta apps, business numbers, simulated customers,
templates, rates and webhook behaviour.

Read from a small JSON or YAML file (``connectx simulator --config sim.yaml``) and/or CLI options;
everything has a default so that ``connectx simulator`` alone runs one demo app and number.
The values are a test double's: access tokens and app secrets here are made up, never Meta's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_VERSION = "v25.0"
DEFAULT_PORT = 8025
DEFAULT_CALLBACK = "http://127.0.0.1:8000/webhooks/whatsapp"
MAX_THROUGHPUT = 1000

# The demo app and number (docs/simulator.md lists them; `connectx demo` users connect these).
DEMO_APP_ID = "300000000000001"
DEMO_APP_SECRET = "sim-app-secret-0001"  # noqa: S105 (a test double's made-up secret)
DEMO_VERIFY_TOKEN = "sim-verify-token-0001"  # noqa: S105
DEMO_PHONE_NUMBER_ID = "100000000000001"
DEMO_DISPLAY_NUMBER = "+15550100001"
DEMO_WABA_ID = "200000000000001"
DEMO_ACCESS_TOKEN = "sim-access-token-0001"  # noqa: S105

_DIGITS = re.compile(r"^[0-9]{1,64}$")
_VERSION = re.compile(r"^v[0-9]{1,3}\.[0-9]{1,2}$")
TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _meta_id(value: str, what: str) -> str:
    if not _DIGITS.match(value):
        raise ValueError(f"{what} must be digits only (like Meta's ids), got {value!r}")
    return value


class AppConfig(_Model):
    """A Meta app: signs the webhooks it sends with ``app_secret``."""

    app_id: str = DEMO_APP_ID
    app_secret: str = Field(DEMO_APP_SECRET, min_length=1)
    verify_token: str = Field(DEMO_VERIFY_TOKEN, min_length=1)
    callback_url: str | None = Field(
        None, description="Where this app's webhooks go (default: the top-level callback_url)."
    )

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, v: str) -> str:
        return _meta_id(v, "app_id")


class NumberConfig(_Model):
    """A business phone number on the Cloud API."""

    phone_number_id: str = DEMO_PHONE_NUMBER_ID
    display_phone_number: str = DEMO_DISPLAY_NUMBER
    waba_id: str = DEMO_WABA_ID
    access_token: str = Field(DEMO_ACCESS_TOKEN, min_length=1)
    app_id: str | None = Field(None, description="The app it belongs to (default: the first).")
    throughput: int = Field(80, ge=1, le=MAX_THROUGHPUT, description="Messages per second.")
    verified_name: str = "ConnectX Demo"

    @field_validator("phone_number_id")
    @classmethod
    def _pnid(cls, v: str) -> str:
        return _meta_id(v, "phone_number_id")

    @field_validator("waba_id")
    @classmethod
    def _waba(cls, v: str) -> str:
        return _meta_id(v, "waba_id")


class CustomerConfig(_Model):
    """A simulated WhatsApp user."""

    wa_id: str | None = Field(None, description="Phone in international digits.")
    user_id: str | None = Field(None, description="Business-scoped user id (BSUID).")
    name: str | None = None
    username: str | None = None
    hide_phone: bool = Field(False, description="Webhooks carry no phone, only the BSUID.")
    hidden_as: Literal["empty", "missing"] = "empty"
    undeliverable: bool = Field(False, description="Sends to them fail with 131026.")

    @model_validator(mode="after")
    def _someone(self) -> CustomerConfig:
        if not self.wa_id and not self.user_id:
            raise ValueError("a customer needs a wa_id (phone) or a user_id (BSUID)")
        return self


class TemplateConfig(_Model):
    waba_id: str | None = None
    name: str
    language: str = "en_US"
    category: Literal["MARKETING", "UTILITY", "AUTHENTICATION"] = "UTILITY"
    status: Literal["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"] = "APPROVED"
    parameter_format: Literal["POSITIONAL", "NAMED"] | None = None
    components: list[dict[str, Any]] = Field(default_factory=list)
    id: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not TEMPLATE_NAME.match(v):
            raise ValueError("template names are lowercase letters, digits and underscores")
        return v


class StatusConfig(_Model):
    """Status callbacks for what the platform sends."""

    progress: Literal["none", "sent", "delivered", "read"] = "read"
    delay_ms: int = Field(200, ge=0, description="Between sent, delivered and read.")
    played: bool = Field(True, description="Voice notes (audio) get 'played' after 'read'.")
    shuffle: float = Field(
        0.0, ge=0, le=1, description="Chance a message's statuses go out in reverse order."
    )
    duplicate: float = Field(0.0, ge=0, le=1, description="Chance each status is sent twice.")
    skip_delivered: float = Field(0.0, ge=0, le=1, description="Chance 'delivered' is skipped.")


class BatchConfig(_Model):
    """How many updates go in one POST (Meta batches up to 1,000)."""

    max_updates: int = Field(1, ge=1, le=1000)
    window_ms: int = Field(0, ge=0, le=60_000, description="Wait this long to fill a batch.")


class WebhookConfig(_Model):
    concurrency: int = Field(4, ge=1, le=256, description="POSTs in flight at once.")
    timeout_s: float = Field(10.0, gt=0)
    retry_base_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(60.0, gt=0)
    retry_for_s: float = Field(900.0, ge=0, description="Give up after this long (Meta: 7 days).")
    escape_slashes: bool = Field(True, description="Write '/' as '\\/' like Meta does.")


class PairRateConfig(_Model):
    interval_s: float = Field(6.0, gt=0, description="One message per this many seconds ...")
    burst: int = Field(5, ge=1, description="... after a burst of this many.")


class SimConfig(_Model):
    graph_version: str = DEFAULT_VERSION
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    public_url: str | None = Field(None, description="Base of media URLs (default: as asked).")
    callback_url: str = DEFAULT_CALLBACK
    apps: list[AppConfig] = Field(default_factory=list)
    numbers: list[NumberConfig] = Field(default_factory=list)
    customers: list[CustomerConfig] = Field(default_factory=list)
    templates: list[TemplateConfig] = Field(default_factory=list)
    template_review: Literal["approve", "pending", "reject"] = "approve"
    statuses: StatusConfig = Field(default_factory=StatusConfig)
    batching: BatchConfig = Field(default_factory=BatchConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    pair_rate: PairRateConfig = Field(default_factory=PairRateConfig)
    window_errors: Literal["sync", "webhook"] = Field(
        "sync",
        description="A free-form message outside the 24-hour window is refused with 131047 in "
        "the response (sync) or accepted and then failed by a status webhook (webhook).",
    )
    media_url_ttl_s: float = Field(300.0, gt=0)
    bsuids: bool = Field(True, description="Give customers created on the fly a BSUID.")
    state_file: Path | None = None
    seed: int | None = None
    demo_data: bool = Field(True, description="Seed demo customers and templates when none given.")

    @field_validator("graph_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not _VERSION.match(v):
            raise ValueError("graph_version looks like v25.0")
        return v

    @model_validator(mode="after")
    def _defaults(self) -> SimConfig:
        if not self.apps:
            self.apps = [AppConfig()]
        if not self.numbers:
            self.numbers = [NumberConfig()]
        app_ids = {a.app_id for a in self.apps}
        if len(app_ids) != len(self.apps):
            raise ValueError("two apps have the same app_id")
        seen: set[str] = set()
        for number in self.numbers:
            if number.phone_number_id in seen:
                raise ValueError(f"phone_number_id {number.phone_number_id} is listed twice")
            seen.add(number.phone_number_id)
            if number.app_id is None:
                number.app_id = self.apps[0].app_id
            elif number.app_id not in app_ids:
                raise ValueError(
                    f"number {number.phone_number_id} names unknown app {number.app_id}"
                )
        if self.demo_data and not self.customers:
            self.customers = demo_customers()
        if self.demo_data and not self.templates:
            self.templates = demo_templates()
        for template in self.templates:
            if template.waba_id is None:
                template.waba_id = self.numbers[0].waba_id
        return self

    def app_for(self, number: NumberConfig) -> AppConfig:
        return next(a for a in self.apps if a.app_id == number.app_id)

    def callback_for(self, app: AppConfig) -> str:
        return app.callback_url or self.callback_url


def demo_customers() -> list[CustomerConfig]:
    return [
        CustomerConfig(wa_id="16505550101", name="Ana Silva", user_id="US.10000000000000000101"),
        CustomerConfig(wa_id="447700900123", name="Ben Carter", user_id="GB.10000000000000000123"),
        CustomerConfig(
            wa_id="5511955550199",
            name="Carla Quiet",
            username="@carla",
            user_id="BR.10000000000000000199",
            hide_phone=True,
        ),
    ]


def demo_templates() -> list[TemplateConfig]:
    return [
        TemplateConfig(
            name="hello_world",
            category="UTILITY",
            components=[
                {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
                {
                    "type": "BODY",
                    "text": "Welcome and congratulations!! This message "
                    "demonstrates your ability to send a WhatsApp message notification.",
                },
                {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
            ],
        ),
        TemplateConfig(
            name="order_update",
            category="UTILITY",
            components=[
                {
                    "type": "BODY",
                    "text": "Hi {{1}}, your order {{2}} is on its way.",
                    "example": {"body_text": [["Ana", "A-1042"]]},
                },
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "URL", "text": "Track", "url": "https://example.com/track/{{1}}"},
                        {"type": "QUICK_REPLY", "text": "Talk to us"},
                    ],
                },
            ],
        ),
        TemplateConfig(
            name="winter_sale",
            category="MARKETING",
            parameter_format="NAMED",
            components=[
                {"type": "HEADER", "format": "IMAGE"},
                {
                    "type": "BODY",
                    "text": "Hi {{first_name}}, {{discount}} off everything this week.",
                    "example": {
                        "body_text_named_params": [
                            {"param_name": "first_name", "example": "Ana"},
                            {"param_name": "discount", "example": "20%"},
                        ]
                    },
                },
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Show me"},
                        {"type": "QUICK_REPLY", "text": "Stop promotions"},
                    ],
                },
            ],
        ),
    ]


def load_file(path: Path) -> dict[str, Any]:
    """A config file's content: JSON (``.json``) or YAML (anything else)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml  # PyYAML comes with uvicorn[standard]

        data = yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the configuration is a mapping of settings")
    return data


def build(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    app: dict[str, Any] | None = None,
    number: dict[str, Any] | None = None,
) -> SimConfig:
    """The configuration from an optional file with overrides on top: ``overrides`` for
    top-level settings (nested ones merged), ``app`` and ``number`` for the first app and
    number (created when the file has none). ``None`` values are ignored."""
    data: dict[str, Any] = load_file(path) if path else {}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **{k: v for k, v in value.items() if v is not None}}
        elif isinstance(value, dict):
            data[key] = {k: v for k, v in value.items() if v is not None}
        else:
            data[key] = value
    for key, first in (("apps", app), ("numbers", number)):
        given = {k: v for k, v in (first or {}).items() if v is not None}
        if given:
            items = list(data.get(key) or [{}])
            items[0] = {**items[0], **given}
            data[key] = items
    return SimConfig.model_validate(data)
