"""What the first bytes of a file say it is, for the MIME types WhatsApp carries.

A short table of magic numbers (file signatures) for the formats Meta accepts for images,
stickers, video, audio and documents; ``None`` when the bytes match none of them. Used to check
that a file is what both the webhook and the media lookup say it is.
"""

from __future__ import annotations

HEAD_BYTES = 4096

OOXML = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
LEGACY_OFFICE = {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"}

# For each declared type we know, what the bytes may be detected as.
COMPATIBLE: dict[str, set[str]] = {
    "image/jpeg": {"image/jpeg"},
    "image/png": {"image/png"},
    "image/webp": {"image/webp"},
    "video/mp4": {"video/mp4", "audio/mp4"},
    "video/3gpp": {"video/3gpp", "video/mp4"},
    "audio/mp4": {"audio/mp4", "video/mp4"},
    "audio/aac": {"audio/aac", "audio/mp4"},
    "audio/mpeg": {"audio/mpeg"},
    "audio/ogg": {"audio/ogg"},
    "audio/opus": {"audio/ogg"},
    "audio/amr": {"audio/amr"},
    "application/pdf": {"application/pdf"},
    "text/plain": {"text/plain"},
    "text/csv": {"text/plain"},
    **{t: {"application/zip"} for t in OOXML},
    **{t: {"application/x-ole-storage"} for t in LEGACY_OFFICE},
}


def base_type(mime: str | None) -> str:
    """``"audio/ogg; codecs=opus"`` → ``"audio/ogg"`` (lower case, no parameters)."""
    return (mime or "").split(";", 1)[0].strip().lower()


def _ftyp(head: bytes) -> str | None:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    brand = head[8:12]
    if brand.startswith(b"3g"):
        return "video/3gpp"
    if brand in (b"M4A ", b"M4B ", b"M4P "):
        return "audio/mp4"
    return "video/mp4"


def detect(head: bytes) -> str | None:
    """The MIME type the leading bytes of a file show, or ``None`` when they show none we know."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/x-ole-storage"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith((b"\x7fELF", b"MZ")):
        return "application/x-executable"
    found = _ftyp(head)
    if found:
        return found
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync: layer bits 00 is AAC in an ADTS stream, anything else MP3.
        return "audio/aac" if head[1] & 0x06 == 0 else "audio/mpeg"
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3:  # not just a character cut at the end of the sample
                return None
        return "text/plain"
    return None


def mismatch(declared: str, head: bytes, *, document: bool) -> str | None:
    """Why the bytes are not a ``declared`` file, or ``None`` when they may be.

    Types we know must be detected as one of their compatible forms. For other document types
    (Meta lets customers send any file as a document) only an executable is refused."""
    declared = base_type(declared)
    detected = detect(head[:HEAD_BYTES])
    if detected == declared:
        return None
    allowed = COMPATIBLE.get(declared)
    if allowed is None:
        if not document:
            return f"{declared} is not a type WhatsApp carries for this kind of message"
        if detected == "application/x-executable":
            return f"the file is a program, not {declared}"
        return None
    if detected in allowed:
        return None
    return f"the file's content is {detected or 'of an unknown kind'}, not {declared}"
