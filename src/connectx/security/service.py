"""Sign-in and device records, new-device alerts, and anomalies flagged to workspace owners.

Policy §2.2 (device and usage data) and §3 ("to protect our Services"). Each sign-in (and each
failed one against an existing account) is recorded with coarse device data only: truncated
network, browser and system family, device class, country when a trusted proxy says
(:mod:`connectx.security.devices`). Kept under the ``usage_log`` retention class.

* A sign-in from a device (``cx_device`` cookie) or a country the account has not used before
  e-mails the account holder, except on the account's very first sign-in.
* Too many sign-ins in the window, sign-ins from several countries in the window, or too many
  failed sign-ins are flagged to the owners of every workspace the account belongs to: a notice
  on the workspace's security page and an e-mail, once per kind and window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from connectx.accounts.principal import Principal, truncated_ip
from connectx.audit import service as audit
from connectx.config import get_settings
from connectx.kit import clock
from connectx.kit.crypto import KeyDestroyed, random_token
from connectx.models.account import UserSession
from connectx.models.security import SecurityNotice, SignInEvent
from connectx.privacy.vault import Vault
from connectx.security import devices
from connectx.security import repository as repo

_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
STATE_NEW_DEVICE_COOKIE = "cx_device_new"

KIND_VELOCITY = "sign_in_velocity"
KIND_COUNTRIES = "sign_in_countries"
KIND_FAILURES = "failed_sign_ins"
KIND_WORDS = {
    KIND_VELOCITY: "an unusual number of sign-ins",
    KIND_COUNTRIES: "sign-ins from more than one country",
    KIND_FAILURES: "many failed sign-in attempts",
}


def _subject(user_id: int) -> str:
    return f"user:{user_id}"


def _device_id(request: Request | None, *, create: bool) -> str | None:
    """The browser's device id (cookie), or a new one the response will set."""
    if request is None:
        return None
    raw = request.cookies.get(devices.DEVICE_COOKIE) or ""
    if _DEVICE_ID.match(raw):
        return raw
    if not create:
        return None
    fresh = getattr(request.state, STATE_NEW_DEVICE_COOKIE, None) or random_token(24)
    setattr(request.state, STATE_NEW_DEVICE_COOKIE, fresh)
    return str(fresh)


async def _event(
    db: AsyncSession, user_id: int, request: Request | None, *, succeeded: bool
) -> SignInEvent:
    device = devices.of_request(request)
    device_id = _device_id(request, create=succeeded)
    return await repo.add_event(
        db,
        SignInEvent(
            user_id=user_id,
            succeeded=succeeded,
            at=clock.now(),
            ip_truncated=truncated_ip(request) if request is not None else None,
            browser=device.browser[:40],
            os=device.os[:40],
            device_class=device.device_class,
            country=devices.country(request),
            device_hash=(await Vault(db).blind_index("device", device_id) if device_id else None),
            new_device=False,
            new_country=False,
        ),
    )


async def signed_in(
    db: AsyncSession, user_id: int, session: UserSession | None, request: Request | None
) -> SignInEvent:
    """Record a completed sign-in (after the second factor, when there is one)."""
    event = await _event(db, user_id, request, succeeded=True)
    event.session_id = session.id if session is not None else None
    first = not await repo.has_signed_in(db, user_id, before_id=event.id)
    if event.device_hash is not None:
        event.new_device = not await repo.knows_device(db, user_id, event.device_hash, event.id)
    if event.country is not None:
        event.new_country = not await repo.knows_country(db, user_id, event.country, event.id)
    await db.flush()
    await audit.record(
        db,
        actor=_subject(user_id),
        action="security.sign_in_recorded",
        subject=_subject(user_id),
        ip=event.ip_truncated,
        data={
            "event_id": event.id,
            "new_device": event.new_device,
            "new_country": event.new_country,
        },
    )
    if not first and (event.new_device or event.new_country):
        await _alert_new_sign_in(db, user_id, event)
    await _check_anomalies(db, user_id)
    return event


async def sign_in_failed(db: AsyncSession, user_id: int, request: Request | None) -> None:
    """Record a failed sign-in (wrong password or code) against an existing account."""
    event = await _event(db, user_id, request, succeeded=False)
    await audit.record(
        db,
        actor="anonymous",
        action="security.sign_in_failed",
        subject=_subject(user_id),
        ip=event.ip_truncated,
        data={"event_id": event.id},
    )
    await _check_anomalies(db, user_id)


# -- alerts ----------------------------------------------------------------------------------


def _when(moment: datetime) -> str:
    return moment.strftime("%d %B %Y at %H:%M UTC")


async def _person(db: AsyncSession, user_id: int) -> tuple[str, str] | None:
    """(e-mail, name) of an account holder, or None when erased or gone."""
    from connectx.accounts import repository as accounts_repo
    from connectx.accounts import service as accounts

    user = await accounts_repo.get_user(db, user_id)
    if user is None:
        return None
    try:
        return await accounts.email_of(db, user), await accounts.name_of(db, user)
    except KeyDestroyed:
        return None


async def _alert_new_sign_in(db: AsyncSession, user_id: int, event: SignInEvent) -> None:
    from connectx.mail import service as mail

    person = await _person(db, user_id)
    if person is None:
        return
    email, name = person
    what = (
        "a new device and a new country"
        if event.new_device and event.new_country
        else "a new device"
        if event.new_device
        else "a new country"
    )
    where = f"\nCountry: {event.country}" if event.country else ""
    network = f"\nNetwork: {event.ip_truncated}" if event.ip_truncated else ""
    url = get_settings().effective_public_url
    await mail.send(
        db,
        to=email,
        subject="New sign-in to your ConnectX account",
        body=(
            f"Hello {name},\n\n"
            f"Your ConnectX account was just signed in to from {what}:\n\n"
            f"Device: {devices.Device(event.browser, event.os, event.device_class).label}"
            f"{where}{network}\nWhen: {_when(event.at)}\n\n"
            "If this was you, there is nothing to do.\n\n"
            "If it was not you, change your password now and sign out everywhere:\n"
            f"{url}/account\n\n"
            f"Your recent sign-ins and devices: {url}/account/security\n"
        ),
        kind="security_new_sign_in",
        subject_ref=_subject(user_id),
        user_id=user_id,
    )
    await audit.record(
        db,
        actor="system",
        action="security.new_sign_in_alerted",
        subject=_subject(user_id),
        data={"event_id": event.id, "new_device": event.new_device, "country": event.new_country},
    )


async def _check_anomalies(db: AsyncSession, user_id: int) -> None:
    settings = get_settings()
    minutes = max(1, settings.security_window_minutes)
    since = clock.now() - timedelta(minutes=minutes)
    found: list[tuple[str, int]] = []
    successes = await repo.count_since(db, user_id, since, succeeded=True)
    if successes >= settings.security_velocity_max:
        found.append((KIND_VELOCITY, successes))
    countries = await repo.countries_since(db, user_id, since)
    if countries >= 2:
        found.append((KIND_COUNTRIES, countries))
    failures = await repo.count_since(db, user_id, since, succeeded=False)
    if failures >= settings.security_failed_max:
        found.append((KIND_FAILURES, failures))
    for kind, count in found:
        await _flag(db, user_id, kind, count, since, minutes)


async def _flag(
    db: AsyncSession, user_id: int, kind: str, count: int, since: datetime, minutes: int
) -> None:
    from connectx.mail import service as mail

    subject = _subject(user_id)
    member = await _person(db, user_id)
    for workspace in await repo.workspaces_of(db, user_id):
        if await repo.open_notice_since(db, workspace.id, kind, subject, since):
            continue  # flagged in this window already
        notice = await repo.add_notice(
            db,
            SecurityNotice(
                workspace_id=workspace.id,
                kind=kind,
                subject=subject,
                count=count,
                window_minutes=minutes,
                created_at=clock.now(),
            ),
        )
        await audit.record(
            db,
            actor="system",
            action="security.anomaly_flagged",
            subject=subject,
            workspace_id=workspace.id,
            data={"notice_id": notice.id, "kind": kind, "count": count, "minutes": minutes},
        )
        who = member[1] if member is not None else f"member {user_id}"
        url = get_settings().effective_public_url
        for owner_id in await repo.owners_of(db, workspace.id):
            owner = await _person(db, owner_id)
            if owner is None:
                continue
            await mail.send(
                db,
                to=owner[0],
                subject=f"Security notice for {workspace.name} on ConnectX",
                body=(
                    f"Hello {owner[1]},\n\n"
                    f"We noticed {KIND_WORDS[kind]} for {who}, a member of {workspace.name}: "
                    f"{count} in the last {minutes} minutes.\n\n"
                    "This may be nothing, or someone may be trying to get into the account. "
                    "Check with them, and review the workspace's security notices:\n"
                    f"{url}/workspace/security\n"
                ),
                kind="security_notice",
                subject_ref=_subject(owner_id),
                user_id=owner_id,
            )


# -- what people see ---------------------------------------------------------------------------


@dataclass
class SignInView:
    at: datetime
    succeeded: bool
    device: str
    network: str | None
    country: str | None
    new_device: bool
    new_country: bool


@dataclass
class DeviceView:
    label: str
    first_seen: datetime
    last_seen: datetime
    sign_ins: int
    countries: list[str] = field(default_factory=list)
    current: bool = False


def _view(e: SignInEvent) -> SignInView:
    return SignInView(
        at=e.at,
        succeeded=e.succeeded,
        device=devices.Device(e.browser, e.os, e.device_class).label,
        network=e.ip_truncated,
        country=e.country,
        new_device=e.new_device,
        new_country=e.new_country,
    )


async def recent_sign_ins(db: AsyncSession, user_id: int, limit: int = 20) -> list[SignInView]:
    return [_view(e) for e in await repo.recent_events(db, user_id, limit)]


async def known_devices(
    db: AsyncSession, user_id: int, request: Request | None = None
) -> list[DeviceView]:
    """Devices the account signed in from (within the retention period), newest first."""
    current_id = _device_id(request, create=False)
    current = await Vault(db).blind_index("device", current_id) if current_id else None
    seen: dict[bytes, DeviceView] = {}
    order: list[bytes] = []
    for e in await repo.successful_events(db, user_id, limit=500):
        key = e.device_hash or f"{e.browser}|{e.os}|{e.device_class}".encode()
        view = seen.get(key)
        if view is None:
            view = seen[key] = DeviceView(
                label=devices.Device(e.browser, e.os, e.device_class).label,
                first_seen=e.at,
                last_seen=e.at,
                sign_ins=0,
                current=current is not None and e.device_hash == current,
            )
            order.append(key)
        view.sign_ins += 1
        view.first_seen = min(view.first_seen, e.at)
        if e.country and e.country not in view.countries:
            view.countries.append(e.country)
    return [seen[k] for k in order]


async def notices_for(
    db: AsyncSession, principal: Principal, *, open_only: bool = False
) -> list[SecurityNotice]:
    assert principal.workspace_id is not None
    return await repo.notices(db, principal.workspace_id, open_only=open_only)


async def resolve_notices(db: AsyncSession, principal: Principal) -> int:
    """Mark every open notice of the workspace reviewed (owners)."""
    assert principal.workspace_id is not None
    count = await repo.resolve_notices(db, principal.workspace_id, principal.actor, clock.now())
    if count:
        await audit.record(
            db,
            actor=principal.actor,
            action="security.notices_resolved",
            workspace_id=principal.workspace_id,
            ip=principal.ip,
            data={"count": count},
        )
    return count
