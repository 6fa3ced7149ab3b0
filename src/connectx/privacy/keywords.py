"""WhatsApp opt-out and opt-in keywords: a customer who writes STOP (or START) stops (or resumes)
marketing messages, and is told so (policy §8: withdrawal as easy as giving).

Per workspace and language: English STOP / START apply until a workspace sets its own English
keywords; other languages (Arabic, …) are added beside them. A message matches when, once
normalised (Unicode NFKC, case-folded, Arabic diacritics and tatweel removed, surrounding spaces
and punctuation dropped), it *is* one of the keywords: "please stop calling me" does not match.

The processor notes matches while it stores a batch (:meth:`KeywordWatcher.note`) and applies
them after the batch's messages are written (:meth:`KeywordWatcher.apply`), in the same
transaction: a ledger record (source ``whatsapp_keyword``, the person as actor; only when the
state changes) and a confirmation queued through the outbound service, which applies every check
a send has (suspension, paused number, the 24-hour window). See docs/consent.md.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from connectx.accounts.caller import Principal
from connectx.audit import service as audit
from connectx.integrations.whatsapp.inbound import InboundMessage
from connectx.kit import clock
from connectx.kit.errors import DomainError, InvalidInput
from connectx.models.channel import Channel
from connectx.models.consent import ConsentKeywords
from connectx.models.contact import Contact
from connectx.models.conversation import Conversation
from connectx.privacy import consent
from connectx.privacy import keywords_repository as repo

log = logging.getLogger(__name__)

STOP, START = "stop", "start"
MAX_WORDS = 10
MAX_WORD_LEN = 40
MAX_REPLY_LEN = 1024
LONGEST_MESSAGE = 64  # longer messages are never a keyword: skip them cheaply
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:_[A-Z]{2})?$")
_ARABIC_MARKS = re.compile("[\u0640\u064b-\u065f\u0670\u06d6-\u06ed]")
_SPACES = re.compile(r"\s+")
KEYWORD_TYPES = ("text", "button", "interactive")


@dataclass(frozen=True)
class KeywordSet:
    language: str
    stop: tuple[str, ...]
    start: tuple[str, ...]
    stop_reply: str
    start_reply: str
    custom: bool = False  # set by the workspace (not the default)


DEFAULT = KeywordSet(
    "en",
    ("STOP",),
    ("START",),
    "You will no longer receive marketing messages from us. Reply START to receive them again.",
    "You will receive marketing messages from us again. Reply STOP at any time to stop them.",
)


# ASCII text (most messages) in one translate: NFKC leaves it as it is, casefold is lower(),
# and the characters of categories P, Z and C become spaces (exactly as the general path).
_ASCII_SPACES = {
    i: " " for i in range(128) if unicodedata.category(chr(i)).startswith(("P", "Z", "C"))
}


def normalise(text: str) -> str:
    """The form keywords and messages are compared in."""
    if text.isascii():
        return _SPACES.sub(" ", text.lower().translate(_ASCII_SPACES)).strip()
    value = unicodedata.normalize("NFKC", text).casefold()
    value = _ARABIC_MARKS.sub("", value)
    value = "".join(
        " " if unicodedata.category(ch).startswith(("P", "Z", "C")) else ch for ch in value
    )
    return _SPACES.sub(" ", value).strip()


@dataclass
class Matcher:
    sets: list[KeywordSet]
    words: dict[str, tuple[str, KeywordSet, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kw in self.sets:
            for action, words in ((STOP, kw.stop), (START, kw.start)):
                for word in words:
                    self.words.setdefault(normalise(word), (action, kw, word))

    def match(self, text: str | None) -> tuple[str, KeywordSet, str] | None:
        if not text or len(text) > LONGEST_MESSAGE:
            return None
        return self.words.get(normalise(text))


def _from_row(row: ConsentKeywords) -> KeywordSet:
    return KeywordSet(
        row.language,
        tuple(row.stop_words),
        tuple(row.start_words),
        row.stop_reply,
        row.start_reply,
        custom=True,
    )


async def keyword_sets(db: AsyncSession, workspace_id: int) -> list[KeywordSet]:
    """The workspace's keywords: its own per language, English defaults unless it set English."""
    rows = [_from_row(r) for r in await repo.for_workspace(db, workspace_id)]
    if not any(r.language == DEFAULT.language for r in rows):
        rows.insert(0, DEFAULT)
    return rows


# -- settings -------------------------------------------------------------------------------


def _words(raw: list[str], what: str) -> tuple[str, ...]:
    words = []
    for word in raw:
        word = word.strip()
        if not word:
            continue
        if len(word) > MAX_WORD_LEN or not normalise(word):
            raise InvalidInput(
                f"Each {what} keyword is 1 to {MAX_WORD_LEN} characters with at least one letter "
                f"or digit; {word[:MAX_WORD_LEN]!r} is not.",
                field=what,
            )
        words.append(word)
    if len(words) > MAX_WORDS:
        raise InvalidInput(f"At most {MAX_WORDS} {what} keywords per language.", field=what)
    return tuple(words)


def check_set(
    language: str, stop: list[str], start: list[str], stop_reply: str, start_reply: str
) -> KeywordSet:
    language = language.strip()
    if not _LANGUAGE.match(language):
        raise InvalidInput(
            "language is a code like en, ar or pt_BR (WhatsApp's template language codes).",
            field="language",
        )
    kw = KeywordSet(
        language,
        _words(stop, "stop"),
        _words(start, "start"),
        stop_reply.strip(),
        start_reply.strip(),
        custom=True,
    )
    if not kw.stop:
        raise InvalidInput(
            "Give at least one stop keyword: customers must always be able to opt out.",
            field="stop",
        )
    if not kw.start:
        raise InvalidInput("Give at least one start keyword.", field="start")
    for what, reply in (("stop_reply", kw.stop_reply), ("start_reply", kw.start_reply)):
        if not 1 <= len(reply) <= MAX_REPLY_LEN:
            raise InvalidInput(
                f"{what} is the confirmation sent back: 1 to {MAX_REPLY_LEN} characters.",
                field=what,
            )
    return kw


def _check_unique(sets: list[KeywordSet]) -> None:
    seen: dict[str, str] = {}
    for kw in sets:
        for action, words in ((STOP, kw.stop), (START, kw.start)):
            for word in words:
                key = normalise(word)
                where = f"{action} ({kw.language})"
                if key in seen and seen[key] != where:
                    raise InvalidInput(
                        f"Keyword {word!r} is both a {seen[key]} and a {where} keyword; a keyword "
                        "must mean one thing.",
                        field=action,
                    )
                seen[key] = where


async def save(db: AsyncSession, principal: Principal, sets: list[KeywordSet]) -> list[KeywordSet]:
    """Replace the workspace's keywords with ``sets`` (an empty list restores the defaults)."""
    assert principal.workspace_id is not None
    ws = principal.workspace_id
    languages = [kw.language for kw in sets]
    if len(set(languages)) != len(languages):
        raise InvalidInput("Each language appears once.", field="language")
    _check_unique(sets if any(k.language == "en" for k in sets) else [DEFAULT, *sets])
    now = clock.now()
    await repo.replace(
        db,
        ws,
        [
            ConsentKeywords(
                workspace_id=ws,
                language=kw.language,
                stop_words=list(kw.stop),
                start_words=list(kw.start),
                stop_reply=kw.stop_reply,
                start_reply=kw.start_reply,
                updated_by=principal.actor,
                updated_at=now,
            )
            for kw in sets
        ],
    )
    await audit.record(
        db,
        actor=principal.actor,
        action="consent.keywords_changed",
        workspace_id=ws,
        ip=principal.ip,
        data={"languages": sorted(languages)},
    )
    return await keyword_sets(db, ws)


# -- the processor's side -------------------------------------------------------------------


@dataclass
class Hit:
    channel: Channel
    contact: Contact
    conversation: Conversation
    action: str
    keywords: KeywordSet
    word: str


class KeywordWatcher:
    """Notes keyword messages while a batch is processed; applies them once it is stored."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db
        self._matchers: dict[int, Matcher] = {}
        self.hits: list[Hit] = []
        # Where a workspace's matcher comes from (the processor's: kept between transactions,
        # connectx.intake.config_cache); by default read in this transaction.
        self.matcher_of: Callable[[int], Awaitable[Matcher]] | None = None

    async def note(
        self,
        channel: Channel,
        contact: Contact,
        conversation: Conversation,
        message: InboundMessage,
    ) -> None:
        body = message.content.body
        if message.type not in KEYWORD_TYPES or not body or len(body) > LONGEST_MESSAGE:
            return
        ws = channel.workspace_id
        matcher = self._matchers.get(ws)
        if matcher is None:
            matcher = self._matchers[ws] = (
                await self.matcher_of(ws)
                if self.matcher_of is not None
                else Matcher(await keyword_sets(self.db, ws))
            )
        found = matcher.match(body)
        if found is not None:
            action, kw, word = found
            self.hits.append(Hit(channel, contact, conversation, action, kw, word))

    async def apply(self) -> None:
        hits, self.hits = self.hits, []
        for hit in hits:
            await apply_keyword(self.db, hit)


async def apply_keyword(db: AsyncSession, hit: Hit) -> None:
    """Record the decision (when it changes the state) and confirm it to the customer."""
    from connectx.outbound import service as outbound  # outbound imports the processor's peers

    contact = hit.contact
    subject = f"contact:{contact.id}"
    granted = hit.action == START
    reply = hit.keywords.start_reply if granted else hit.keywords.stop_reply
    state = await consent.current_state(db, subject, "marketing", "whatsapp")
    if state.granted != granted or not state.decided:
        await consent.record(
            db,
            subject=subject,
            workspace_id=contact.workspace_id,
            purpose="marketing",
            channel="whatsapp",
            granted=granted,
            source="whatsapp_keyword",
            wording=f'The customer sent the keyword "{hit.word}" ({hit.keywords.language}); '
            f"the confirmation sent back: {reply}",
            notice_version=f"whatsapp-keywords-{hit.keywords.language}",
            actor=subject,
        )
    try:
        async with db.begin_nested():
            await outbound.queue_text(
                db,
                Principal(actor="system", workspace_id=contact.workspace_id),
                hit.channel,
                contact,
                hit.conversation,
                reply,
            )
    except DomainError as exc:  # paused or disconnected number, suspended workspace, ...
        log.warning(
            "keyword confirmation not queued (contact %s, channel %s): %s",
            contact.id,
            hit.channel.id,
            type(exc).__name__,
        )
