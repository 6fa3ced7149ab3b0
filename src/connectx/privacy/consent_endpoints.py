"""Consent over the API: a workspace's WhatsApp keywords, a contact's consents (agents and keys
record decisions), and the signed-in person's own e-mail consents."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.principal import Principal, require_user
from connectx.db.session import db_session
from connectx.kit.csrf import csrf_protect
from connectx.privacy import consent, keywords, withdrawal
from connectx.workspaces.access import MANAGERS, allow

router = APIRouter(prefix="/api/v1", tags=["consent"], dependencies=[Depends(csrf_protect)])
DB = Depends(db_session, scope="function")

readers = allow("read", "owner", "admin", "agent")
writers = allow("write", "owner", "admin", "agent")
managers = allow("admin", *MANAGERS)


class KeywordSetIn(BaseModel):
    language: str = Field(description="WhatsApp language code: en, ar, pt_BR, ...")
    stop: list[str] = Field(description="Messages that stop marketing, e.g. STOP.")
    start: list[str] = Field(description="Messages that resume marketing, e.g. START.")
    stop_reply: str = Field(description="The confirmation sent after a stop keyword.")
    start_reply: str = Field(description="The confirmation sent after a start keyword.")


class KeywordSetOut(KeywordSetIn):
    default: bool = Field(description="True for the built-in English set (not saved yet).")


class KeywordsIn(BaseModel):
    languages: list[KeywordSetIn] = Field(
        description="Every language's keywords; [] restores the defaults (English STOP/START)."
    )


class KeywordsOut(BaseModel):
    languages: list[KeywordSetOut]


class StateOut(BaseModel):
    purpose: str
    channel: str
    granted: bool
    decided: bool
    since: datetime | None
    source: str | None


class RecordOut(BaseModel):
    id: int
    purpose: str
    channel: str
    granted: bool
    source: str
    wording: str
    wording_hash: str
    notice_version: str
    actor: str
    created_at: datetime


class ContactConsentOut(BaseModel):
    contact_id: int
    states: list[StateOut]
    history: list[RecordOut] = Field(description="Every decision, oldest first.")


class DecisionIn(BaseModel):
    purpose: str = Field(description=f"One of {', '.join(consent.PURPOSES)}.")
    channel: str = Field("whatsapp", description=f"One of {', '.join(consent.CHANNELS)}.")
    granted: bool = Field(description="false withdraws, true gives consent.")
    wording: str | None = Field(
        None, description="The words the customer agreed to (required when granted)."
    )


class AccountDecisionIn(BaseModel):
    purpose: str = Field(description="marketing or product_updates (e-mail).")
    granted: bool


def _sets_out(sets: list[keywords.KeywordSet]) -> KeywordsOut:
    return KeywordsOut(
        languages=[
            KeywordSetOut(
                language=k.language,
                stop=list(k.stop),
                start=list(k.start),
                stop_reply=k.stop_reply,
                start_reply=k.start_reply,
                default=not k.custom,
            )
            for k in sets
        ]
    )


def _state_out(s: consent.ConsentState) -> StateOut:
    return StateOut(
        purpose=s.purpose,
        channel=s.channel,
        granted=s.granted,
        decided=s.decided,
        since=s.since,
        source=s.source,
    )


@router.get(
    "/workspace/consent/keywords", response_model=KeywordsOut, summary="WhatsApp STOP/START words"
)
async def get_keywords(
    principal: Principal = Depends(readers), db: AsyncSession = DB
) -> KeywordsOut:
    assert principal.workspace_id is not None
    return _sets_out(await keywords.keyword_sets(db, principal.workspace_id))


@router.put("/workspace/consent/keywords", response_model=KeywordsOut, summary="Set the keywords")
async def put_keywords(
    body: KeywordsIn, principal: Principal = Depends(managers), db: AsyncSession = DB
) -> KeywordsOut:
    sets = [
        keywords.check_set(k.language, k.stop, k.start, k.stop_reply, k.start_reply)
        for k in body.languages
    ]
    return _sets_out(await keywords.save(db, principal, sets))


@router.get(
    "/contacts/{contact_id}/consent",
    response_model=ContactConsentOut,
    summary="A contact's consents and their ledger",
)
async def get_contact_consent(
    contact_id: int, principal: Principal = Depends(readers), db: AsyncSession = DB
) -> ContactConsentOut:
    found = await withdrawal.contact_consents(db, principal, contact_id)
    return ContactConsentOut(
        contact_id=found.contact_id,
        states=[_state_out(s) for s in found.states],
        history=[RecordOut.model_validate(r, from_attributes=True) for r in found.history],
    )


@router.post(
    "/contacts/{contact_id}/consent",
    response_model=StateOut,
    status_code=201,
    summary="Record a contact's decision (an agent's action, or an API key's)",
)
async def post_contact_consent(
    contact_id: int,
    body: DecisionIn,
    principal: Principal = Depends(writers),
    db: AsyncSession = DB,
) -> StateOut:
    state = await withdrawal.decide_for_contact(
        db,
        principal,
        contact_id,
        purpose=body.purpose,
        channel=body.channel,
        granted=body.granted,
        wording=body.wording,
    )
    return _state_out(state)


@router.get("/account/consent", response_model=list[StateOut], summary="Your e-mail consents")
async def get_account_consent(
    principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> list[StateOut]:
    assert principal.user_id is not None
    return [_state_out(s) for s in await withdrawal.account_states(db, principal.user_id)]


@router.post(
    "/account/consent", response_model=StateOut, summary="Give or withdraw an e-mail consent"
)
async def post_account_consent(
    body: AccountDecisionIn, principal: Principal = Depends(require_user), db: AsyncSession = DB
) -> StateOut:
    return _state_out(
        await withdrawal.decide_for_account(db, principal, body.purpose, body.granted)
    )
