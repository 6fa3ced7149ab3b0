"""Draw the PWA icons (static/img/icon-192.png, icon-512.png) from the logo's shapes, with the
standard library only (no image library needed). Run again only if the logo changes."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/connectx/web/static/img"
GREEN = (18, 140, 94, 255)
WHITE = (255, 255, 255, 255)


def inside_round_rect(
    x: float, y: float, x0: float, y0: float, x1: float, y1: float, r: float
) -> bool:
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def pixel(x: float, y: float) -> tuple[int, int, int, int]:
    """The colour at (x, y) in the logo's 32x32 space (icons are full-bleed: maskable-safe)."""
    bubble = inside_round_rect(x, y, 7, 10.5, 25, 21.5, 2)
    tail = 11 <= x <= 16 and 21.5 <= y <= 25.5 and (y - 21.5) <= (16 - x) * 0.8 + 0.01
    if bubble or tail:
        return WHITE
    return GREEN


def png(size: int) -> bytes:
    rows = []
    for j in range(size):
        row = bytearray([0])
        for i in range(size):
            row.extend(pixel((i + 0.5) * 32 / size, (j + 0.5) * 32 / size))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


if __name__ == "__main__":
    for size in (192, 512):
        (OUT / f"icon-{size}.png").write_bytes(png(size))
