"""Accounts: sign-up, e-mail verification, sign-in (with a second factor), passwords, profile.

Policy §2.1 and §3 ("account creation and authentication"). Personal fields are encrypted under
the user's own subject key (``user:<id>``, platform scope); the e-mail address is found through
its blind index. Every write of personal data records an audit event in the same transaction.
Services never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from fastapi import Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts import repository as repo
from connectx.accounts import sessions, twofactor
from connectx.accounts.principal import truncated_ip
from connectx.accounts.throttle import Throttle, remember
from connectx.audit import service as audit
from connectx.config import get_settings
from connectx.kit import clock, passwords
from connectx.kit.crypto import random_token, token_hash
from connectx.kit.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound, Unauthenticated
from connectx.kit.phones import to_e164
from connectx.mail import service as mail
from connectx.models.account import ActionToken, User, UserSession
from connectx.privacy import consent
from connectx.privacy.vault import Vault
from connectx.security import service as security_signals

# The words shown next to the marketing checkbox on the sign-up form, recorded in the consent
# ledger with the choice. Change them and the ledger records the new words from then on.
MARKETING_WORDING = (
    "Send me occasional e-mails about ConnectX product news and offers. "
    "I can unsubscribe at any time."
)
# The privacy notice in force: the policy's "Last Updated" date.
NOTICE_VERSION = "2025-08-02"

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 (a token purpose, not a secret)
VERIFY_TTL = timedelta(hours=24)
RESET_TTL = timedelta(hours=1)

NAME_MAX = 200
ADDRESS_MAX = 500

COL_EMAIL = "users.email"
COL_NAME = "users.name"
COL_PHONE = "users.phone"
COL_BILLING = "users.billing_address"

# -- small helpers ----------------------------------------------------------------------------


def normalise_email(raw: str) -> str:
    """Validate an e-mail address and give its canonical form (trimmed, lower case)."""
    try:
        checked = validate_email((raw or "").strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(
            "Enter a valid e-mail address, like name@example.com.", field="email"
        ) from exc
    return checked.normalized.strip().lower()


def _lookup_form(raw: str) -> str:
    """The normalised address if valid, else the trimmed lower-case text (for lookups that
    must behave the same whether or not the input is a valid address)."""
    try:
        return normalise_email(raw)
    except InvalidInput:
        return (raw or "").strip().lower()


def _clean_name(raw: str) -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise InvalidInput("Enter your name.", field="name")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"Your name can be at most {NAME_MAX} characters.", field="name")
    return name


def _clean_address(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = "\n".join(line.strip() for line in raw.strip().splitlines() if line.strip())
    if len(text) > ADDRESS_MAX:
        raise InvalidInput(
            f"The billing address can be at most {ADDRESS_MAX} characters.",
            field="billing_address",
        )
    return text or None


def subject_of(user_id: int) -> str:
    return f"user:{user_id}"


def _ip(request: Request | None) -> str | None:
    return truncated_ip(request) if request is not None else None


# -- reading ----------------------------------------------------------------------------------


@dataclass
class Profile:
    id: int
    name: str
    email: str
    phone: str
    billing_address: str | None
    email_verified: bool
    two_factor_enabled: bool
    created_at: datetime


async def email_index(db: AsyncSession, email: str) -> bytes:
    return await Vault(db).blind_index("email", email)


async def find_user_by_email(db: AsyncSession, email: str) -> User | None:
    """The account with this address (any spelling case), or None."""
    return await repo.user_by_email_index(db, await email_index(db, _lookup_form(email)))


async def get_user(db: AsyncSession, user_id: int) -> User:
    user = await repo.get_user(db, user_id)
    if user is None:
        raise NotFound("This account no longer exists.")
    return user


async def email_of(db: AsyncSession, user: User) -> str:
    return await Vault(db).decrypt(None, subject_of(user.id), COL_EMAIL, user.email_enc)


async def name_of(db: AsyncSession, user: User) -> str:
    return await Vault(db).decrypt(None, subject_of(user.id), COL_NAME, user.name_enc)


async def profile(db: AsyncSession, user: User) -> Profile:
    vault = Vault(db)
    ref = subject_of(user.id)
    billing = None
    if user.billing_address_enc is not None:
        billing = await vault.decrypt(None, ref, COL_BILLING, user.billing_address_enc)
    return Profile(
        id=user.id,
        name=await vault.decrypt(None, ref, COL_NAME, user.name_enc),
        email=await vault.decrypt(None, ref, COL_EMAIL, user.email_enc),
        phone=await vault.decrypt(None, ref, COL_PHONE, user.phone_enc),
        billing_address=billing,
        email_verified=user.email_verified_at is not None,
        two_factor_enabled=user.totp_enabled_at is not None,
        created_at=user.created_at,
    )


async def profiles(db: AsyncSession, user_ids: list[int]) -> dict[int, Profile]:
    """Decrypted profiles of several users (member lists)."""
    return {u.id: await profile(db, u) for u in await repo.users_by_ids(db, user_ids)}


# -- sign-up ----------------------------------------------------------------------------------


async def create_user(
    db: AsyncSession,
    *,
    name: str,
    email: str,
    phone: str,
    password: str,
    billing_address: str | None = None,
    marketing_opt_in: bool = False,
    marketing_wording: str = MARKETING_WORDING,
    verified: bool = False,
    consent_source: str | None = "signup_form",
    actor: str | None = None,
    ip: str | None = None,
) -> User:
    """Create an account holder: validated, personal fields encrypted, password hashed, the
    marketing choice appended to the consent ledger, audit event ``account.created``.

    ``actor`` defaults to the new user (self sign-up); pass e.g. "system" or "user:3" otherwise.
    ``consent_source`` names where the marketing choice was made (one of
    :data:`connectx.privacy.consent.SOURCES`); ``None`` when the person was offered no choice
    (an operator or the demo creates the account): nothing is recorded, and no consent exists.
    Raises InvalidInput for bad input and Conflict when the e-mail address has an account.
    """
    clean_name = _clean_name(name)
    clean_email = normalise_email(email)
    clean_phone = to_e164(phone or "")
    clean_address = _clean_address(billing_address)
    passwords.check_new_password(password, context=(clean_email, clean_name))

    index = await email_index(db, clean_email)
    if await repo.user_by_email_index(db, index) is not None:
        raise _duplicate()
    now = clock.now()
    user = User(
        email_index=index,
        email_enc=b"",
        name_enc=b"",
        phone_enc=b"",
        password_hash=await passwords.hash_password(password),
        email_verified_at=now if verified else None,
        is_operator=False,
        created_at=now,
        updated_at=now,
    )
    try:
        async with db.begin_nested():
            await repo.add_user(db, user)
    except IntegrityError as exc:  # the same address signed up concurrently
        raise _duplicate() from exc

    vault = Vault(db)
    ref = subject_of(user.id)
    user.email_enc = await vault.encrypt(None, ref, COL_EMAIL, clean_email)
    user.name_enc = await vault.encrypt(None, ref, COL_NAME, clean_name)
    user.phone_enc = await vault.encrypt(None, ref, COL_PHONE, clean_phone)
    if clean_address:
        user.billing_address_enc = await vault.encrypt(None, ref, COL_BILLING, clean_address)
    await db.flush()

    who = actor or ref
    if consent_source is not None:
        await consent.record(
            db,
            subject=ref,
            workspace_id=None,
            purpose="marketing",
            channel="email",
            granted=bool(marketing_opt_in),
            source=consent_source,
            wording=marketing_wording,
            notice_version=NOTICE_VERSION,
            actor=who,
            ip=ip,
        )
    await audit.record(
        db,
        actor=who,
        action="account.created",
        subject=ref,
        ip=ip,
        data={"verified": verified, "billing_address": clean_address is not None},
    )
    return user


def _duplicate() -> Conflict:
    return Conflict(
        "An account with this e-mail address already exists. Sign in, or use "
        "'Forgot password' to get back into it.",
        field="email",
    )


async def sign_up(
    db: AsyncSession,
    *,
    name: str,
    email: str,
    phone: str,
    password: str,
    billing_address: str | None,
    marketing_opt_in: bool,
    request: Request | None,
) -> User:
    """Self sign-up from the form or the API: the account, then the verification e-mail."""
    user = await create_user(
        db,
        name=name,
        email=email,
        phone=phone,
        password=password,
        billing_address=billing_address,
        marketing_opt_in=marketing_opt_in,
        ip=_ip(request),
    )
    await send_verification(db, user)
    return user


# -- one-time links ---------------------------------------------------------------------------


async def _issue_token(db: AsyncSession, user_id: int, purpose: str, ttl: timedelta) -> str:
    now = clock.now()
    await repo.use_open_tokens(db, user_id, purpose, now)  # only the newest link works
    raw = random_token(32)
    await repo.add_token(
        db,
        ActionToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=token_hash(raw),
            created_at=now,
            expires_at=now + ttl,
        ),
    )
    return raw


async def _redeem(db: AsyncSession, purpose: str, raw: str, what: str) -> ActionToken:
    again = (
        "Ask for a new link from the sign-in page."
        if purpose == VERIFY_EMAIL
        else "Ask for a new one with 'Forgot password'."
    )
    token = await repo.token_by_hash(db, purpose, token_hash((raw or "").strip()))
    if token is None:
        raise Gone(f"This {what} link is not valid (it may be incomplete). {again}")
    if token.used_at is not None:
        raise Gone(f"This {what} link was already used or replaced by a newer one. {again}")
    if clock.now() >= token.expires_at:
        raise Gone(f"This {what} link has expired. {again}")
    if not await repo.use_token(db, token.id, clock.now()):
        raise Gone(f"This {what} link was already used. {again}")
    return token


async def send_verification(db: AsyncSession, user: User) -> None:
    raw = await _issue_token(db, user.id, VERIFY_EMAIL, VERIFY_TTL)
    url = f"{get_settings().effective_public_url}/verify?token={raw}"
    name = await name_of(db, user)
    await mail.send(
        db,
        to=await email_of(db, user),
        subject="Confirm your e-mail address for ConnectX",
        body=(
            f"Hello {name},\n\n"
            "Please confirm your e-mail address by opening this link:\n\n"
            f"{url}\n\n"
            "The link works once and expires in 24 hours. If you did not sign up for ConnectX, "
            "you can ignore this message.\n"
        ),
        kind=VERIFY_EMAIL,
        subject_ref=subject_of(user.id),
        user_id=user.id,
    )


async def verify_email(db: AsyncSession, raw_token: str, request: Request | None) -> User:
    token = await _redeem(db, VERIFY_EMAIL, raw_token, "confirmation")
    user = await get_user(db, token.user_id)
    if user.email_verified_at is None:
        user.email_verified_at = clock.now()
        user.updated_at = clock.now()
        await audit.record(
            db,
            actor=subject_of(user.id),
            action="account.email_verified",
            subject=subject_of(user.id),
            ip=_ip(request),
        )
    return user


async def resend_verification(db: AsyncSession, *, email: str, request: Request | None) -> None:
    """Send a fresh confirmation link if the address has an unconfirmed account. Says nothing
    either way (the caller answers the same), and is rate-limited like sign-in."""
    address = _lookup_form(email)
    throttle = Throttle(db, "verify", account=address, request=request, count_all=True)
    await throttle.check()
    await throttle.counted()
    user = await repo.user_by_email_index(db, await email_index(db, address))
    if user is not None and user.email_verified_at is None:
        await send_verification(db, user)


async def request_password_reset(db: AsyncSession, *, email: str, request: Request | None) -> None:
    """Mail a one-time reset link (1 hour) if the address has an account; silent otherwise."""
    address = _lookup_form(email)
    throttle = Throttle(db, "forgot", account=address, request=request, count_all=True)
    await throttle.check()
    await throttle.counted()
    user = await repo.user_by_email_index(db, await email_index(db, address))
    if user is None:
        return
    raw = await _issue_token(db, user.id, RESET_PASSWORD, RESET_TTL)
    url = f"{get_settings().effective_public_url}/reset?token={raw}"
    await mail.send(
        db,
        to=await email_of(db, user),
        subject="Reset your ConnectX password",
        body=(
            f"Hello {await name_of(db, user)},\n\n"
            "Someone (we hope you) asked to reset the password of your ConnectX account. "
            "Choose a new password here:\n\n"
            f"{url}\n\n"
            "The link works once and expires in 1 hour. Resetting signs you out everywhere. "
            "If you did not ask for this, ignore this message: your password stays as it is.\n"
        ),
        kind=RESET_PASSWORD,
        subject_ref=subject_of(user.id),
        user_id=user.id,
    )


async def check_reset_token(db: AsyncSession, raw_token: str) -> None:
    """Raise Gone when a reset link can no longer be used (before showing the form)."""
    token = await repo.token_by_hash(db, RESET_PASSWORD, token_hash((raw_token or "").strip()))
    if token is None or token.used_at is not None or clock.now() >= token.expires_at:
        raise Gone(
            "This password-reset link is not valid any more (links work once, for 1 hour). "
            "Ask for a new one with 'Forgot password'."
        )


async def reset_password(
    db: AsyncSession, *, raw_token: str, new_password: str, request: Request | None
) -> User:
    """Set a new password from a reset link; every session of the account is revoked."""
    token = await repo.token_by_hash(db, RESET_PASSWORD, token_hash((raw_token or "").strip()))
    if token is not None:
        user = await get_user(db, token.user_id)
        passwords.check_new_password(
            new_password, context=(await email_of(db, user), await name_of(db, user))
        )
    token = await _redeem(db, RESET_PASSWORD, raw_token, "password-reset")
    user = await get_user(db, token.user_id)
    await _set_password(db, user, new_password)
    if user.email_verified_at is None:  # the link reached the mailbox: the address is theirs
        user.email_verified_at = clock.now()
    ref = subject_of(user.id)
    await sessions.revoke_all(db, user.id, actor=ref, ip=_ip(request), reason="password reset")
    # A reset is the way out of a sign-in lockout.
    await Throttle(db, "signin", account=await email_of(db, user), request=None).succeeded()
    await audit.record(db, actor=ref, action="account.password_reset", subject=ref, ip=_ip(request))
    return user


async def _set_password(db: AsyncSession, user: User, password: str) -> None:
    user.password_hash = await passwords.hash_password(password)
    user.updated_at = clock.now()
    await db.flush()


async def set_password(
    db: AsyncSession, user_id: int, new_password: str, *, actor: str, reason: str | None = None
) -> None:
    """Set a password on someone's behalf (operator CLI); revokes all their sessions."""
    user = await get_user(db, user_id)
    passwords.check_new_password(
        new_password, context=(await email_of(db, user), await name_of(db, user))
    )
    await _set_password(db, user, new_password)
    ref = subject_of(user.id)
    await sessions.revoke_all(db, user.id, actor=actor, reason=reason or "password set")
    await audit.record(db, actor=actor, action="account.password_set", subject=ref, reason=reason)


# -- sign-in ----------------------------------------------------------------------------------

WRONG_CREDENTIALS = (
    "The e-mail address or password is not right. Check both and try again, "
    "or use 'Forgot password'."
)


@dataclass
class SignIn:
    user_id: int
    raw_token: str
    session: UserSession
    second_factor_due: bool

    @property
    def next_url(self) -> str:
        return "/signin/2fa" if self.second_factor_due else "/workspace"


async def _end_presented_session(db: AsyncSession, request: Request | None) -> None:
    """Sign-in issues a new token; the one the browser presented (if any) stops working."""
    if request is None:
        return
    old = await sessions.session_from_cookie(db, request)
    if old is not None:
        await sessions.revoke(db, old.id, actor=subject_of(old.user_id), ip=_ip(request))


async def sign_in(
    db: AsyncSession, *, email: str, password: str, request: Request | None
) -> SignIn:
    """Check the password (rate-limited per address and per client). With 2FA on, the session
    starts with the second factor due. Failures are recorded before the error is raised: the
    caller must let the transaction commit (answer the error without raising through the
    request's unit of work)."""
    address = _lookup_form(email)
    throttle = Throttle(db, "signin", account=address, request=request)
    await throttle.check()
    user = await repo.user_by_email_index(db, await email_index(db, address))
    if user is None:
        await passwords.waste_time(password or "")
        ok = False
    else:
        ok = await passwords.verify_password(user.password_hash, password or "")
    if not ok or user is None:
        await throttle.failed()
        if (
            user is not None
        ):  # device record and failed-sign-in anomalies (docs/security-signals.md)
            await security_signals.sign_in_failed(db, user.id, request)
        raise remember(Unauthenticated(WRONG_CREDENTIALS))
    await throttle.succeeded()
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash_password(password)
        await audit.record(
            db,
            actor=subject_of(user.id),
            action="account.password_rehashed",
            subject=subject_of(user.id),
        )
    if user.email_verified_at is None:
        raise remember(
            Forbidden(
                "Confirm your e-mail address first: open the link we e-mailed you when you signed "
                "up. No e-mail? You can have it sent again.",
                reason="email_unverified",
            )
        )
    await _end_presented_session(db, request)
    if user.totp_enabled_at is not None:
        raw, session = await sessions.start_session(db, user.id, request, mfa_pending=True)
        return SignIn(user.id, raw, session, second_factor_due=True)
    workspace_id = await repo.first_workspace_of(db, user.id)
    raw, session = await sessions.start_session(db, user.id, request, workspace_id)
    await security_signals.signed_in(db, user.id, session, request)
    return SignIn(user.id, raw, session, second_factor_due=False)


async def pending_second_factor(db: AsyncSession, request: Request) -> UserSession:
    pending = await sessions.session_from_cookie(db, request)
    if pending is None or not pending.mfa_pending:
        raise Unauthenticated(
            "Your sign-in has expired or was not started here. Sign in again with your e-mail "
            "address and password."
        )
    return pending


async def complete_second_factor(db: AsyncSession, *, code: str, request: Request) -> SignIn:
    """The TOTP code or a recovery code for a session whose second factor is due; a fresh
    session token replaces the pending one. Failures must be committed (see :func:`sign_in`)."""
    pending = await pending_second_factor(db, request)
    user = await get_user(db, pending.user_id)
    throttle = Throttle(db, "mfa", account=subject_of(user.id), request=request)
    await throttle.check()
    method = await twofactor.check_code_or_recovery(db, user, code or "")
    if method is None:
        await throttle.failed()
        await security_signals.sign_in_failed(db, user.id, request)
        raise remember(
            Unauthenticated(
                "That code is not right. Enter the 6-digit code your authenticator app shows "
                "now, or one of your recovery codes."
            )
        )
    await throttle.succeeded()
    ref = subject_of(user.id)
    await repo.revoke_session(db, pending.id, clock.now())
    if method == "recovery_code":
        left = await twofactor.remaining_recovery_codes(db, user)
        await audit.record(
            db,
            actor=ref,
            action="account.recovery_code_used",
            subject=ref,
            ip=_ip(request),
            data={"remaining": left},
        )
    workspace_id = await repo.first_workspace_of(db, user.id)
    raw, session = await sessions.start_session(db, user.id, request, workspace_id)
    await security_signals.signed_in(db, user.id, session, request)
    return SignIn(user.id, raw, session, second_factor_due=False)


# -- the signed-in account --------------------------------------------------------------------


async def update_profile(
    db: AsyncSession,
    user_id: int,
    *,
    name: str | None = None,
    phone: str | None = None,
    billing_address: str | None = None,
    clear_billing_address: bool = False,
    actor: str | None = None,
    ip: str | None = None,
) -> Profile:
    """Change name, phone or billing address (audit ``account.updated`` names the fields)."""
    user = await get_user(db, user_id)
    vault = Vault(db)
    ref = subject_of(user.id)
    changed: list[str] = []
    if name is not None:
        user.name_enc = await vault.encrypt(None, ref, COL_NAME, _clean_name(name))
        changed.append("name")
    if phone is not None:
        user.phone_enc = await vault.encrypt(None, ref, COL_PHONE, to_e164(phone))
        changed.append("phone")
    if clear_billing_address:
        user.billing_address_enc = None
        changed.append("billing_address")
    elif billing_address is not None:
        address = _clean_address(billing_address)
        user.billing_address_enc = (
            await vault.encrypt(None, ref, COL_BILLING, address) if address else None
        )
        changed.append("billing_address")
    if changed:
        user.updated_at = clock.now()
        await db.flush()
        await audit.record(
            db,
            actor=actor or ref,
            action="account.updated",
            subject=ref,
            ip=ip,
            data={"fields": changed},
        )
    return await profile(db, user)


async def change_email(
    db: AsyncSession, user: User, email: str, *, actor: str, ip: str | None = None
) -> None:
    """Replace the address (sealed value and keyed hash) with a corrected one: it must be
    confirmed before the next sign-in, and a confirmation link is mailed to it."""
    clean = normalise_email(email)
    ref = subject_of(user.id)
    user.email_index = await email_index(db, clean)
    user.email_enc = await Vault(db).encrypt(None, ref, COL_EMAIL, clean)
    user.email_verified_at = None
    user.updated_at = clock.now()
    await db.flush()
    await audit.record(
        db, actor=actor, action="account.updated", subject=ref, ip=ip, data={"fields": ["email"]}
    )
    await send_verification(db, user)


async def _check_current_password(
    db: AsyncSession, user: User, password: str, request: Request | None
) -> None:
    throttle = Throttle(db, "password", account=subject_of(user.id), request=request)
    await throttle.check()
    if not await passwords.verify_password(user.password_hash, password or ""):
        await throttle.failed()
        raise remember(
            Unauthenticated("Your current password is not right.", field="current_password")
        )
    await throttle.succeeded()


async def change_password(
    db: AsyncSession,
    user_id: int,
    *,
    current_password: str,
    new_password: str,
    current_session_id: int | None,
    request: Request | None,
) -> int:
    """Change the password; every other session is signed out. Returns how many were."""
    user = await get_user(db, user_id)
    passwords.check_new_password(
        new_password, context=(await email_of(db, user), await name_of(db, user))
    )
    await _check_current_password(db, user, current_password, request)
    await _set_password(db, user, new_password)
    ref = subject_of(user.id)
    count = await sessions.revoke_all(
        db,
        user.id,
        actor=ref,
        except_session_id=current_session_id,
        ip=_ip(request),
        reason="password changed",
    )
    await audit.record(
        db, actor=ref, action="account.password_changed", subject=ref, ip=_ip(request)
    )
    return count


async def start_two_factor(db: AsyncSession, user_id: int) -> twofactor.Enrolment:
    user = await get_user(db, user_id)
    if user.totp_enabled_at is not None:
        raise Conflict(
            "Two-factor authentication is already on. Turn it off first to use another device."
        )
    return await twofactor.start(db, user, await email_of(db, user))


async def confirm_two_factor(
    db: AsyncSession, user_id: int, *, code: str, request: Request | None
) -> list[str]:
    """Enable 2FA once a code from the new secret checks out; returns the recovery codes."""
    user = await get_user(db, user_id)
    if user.totp_enabled_at is not None:
        raise Conflict("Two-factor authentication is already on.")
    if user.totp_secret_enc is None:
        raise InvalidInput("Start setting up two-factor authentication first.", field="code")
    throttle = Throttle(db, "mfa", account=subject_of(user.id), request=request)
    await throttle.check()
    if not await twofactor.check_totp(db, user, code):
        await throttle.failed()
        raise remember(
            InvalidInput(
                "That code does not match. Enter the 6-digit code your authenticator app shows "
                "now for ConnectX (check the phone's clock is right).",
                field="code",
            )
        )
    await throttle.succeeded()
    codes = await twofactor.enable(db, user)
    ref = subject_of(user.id)
    await audit.record(db, actor=ref, action="account.2fa_enabled", subject=ref, ip=_ip(request))
    return codes


async def _prove_presence(
    db: AsyncSession, user: User, code: str | None, password: str | None, request: Request | None
) -> None:
    """A current code (or recovery code) or the password, before weakening the account."""
    if code:
        throttle = Throttle(db, "mfa", account=subject_of(user.id), request=request)
        await throttle.check()
        if await twofactor.check_code_or_recovery(db, user, code) is None:
            await throttle.failed()
            raise remember(
                Unauthenticated(
                    "That code is not right. Enter the code your authenticator app shows now, "
                    "or a recovery code.",
                    field="code",
                )
            )
        await throttle.succeeded()
        return
    if password:
        await _check_current_password(db, user, password, request)
        return
    raise InvalidInput(
        "Enter a current code from your authenticator app, or your password.", field="code"
    )


async def disable_two_factor(
    db: AsyncSession,
    user_id: int,
    *,
    code: str | None,
    password: str | None,
    request: Request | None,
) -> None:
    user = await get_user(db, user_id)
    if user.totp_enabled_at is None and user.totp_secret_enc is None:
        raise Conflict("Two-factor authentication is not on.")
    if user.totp_enabled_at is not None:
        await _prove_presence(db, user, code, password, request)
    await twofactor.disable(db, user)
    ref = subject_of(user.id)
    await audit.record(db, actor=ref, action="account.2fa_disabled", subject=ref, ip=_ip(request))


async def regenerate_recovery_codes(
    db: AsyncSession,
    user_id: int,
    *,
    code: str | None,
    password: str | None,
    request: Request | None,
) -> list[str]:
    user = await get_user(db, user_id)
    if user.totp_enabled_at is None:
        raise Conflict("Turn on two-factor authentication first; recovery codes come with it.")
    await _prove_presence(db, user, code, password, request)
    codes = await twofactor.new_recovery_codes(db, user)
    ref = subject_of(user.id)
    await audit.record(
        db, actor=ref, action="account.recovery_codes_regenerated", subject=ref, ip=_ip(request)
    )
    return codes
