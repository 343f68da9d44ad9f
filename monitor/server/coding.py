"""Request and response bodies without their content coding (``Content-Encoding``), never
inflated past a bound.

The sidecar's application is served with aiohttp's own decompression off
(:func:`monitor.server.app.create_app`): aiohttp refused a coding it cannot read (``br`` without
the Brotli package, ``zstd``) while parsing the request head, with a plain-text 400 that no
handler, counter or log line of the sidecar saw, and a gzip body that was not gzip left an
``ERROR ... Unhandled exception`` traceback in the log after the intake's 400. The intake, the
CloudEvents intake and the proxy's tap read bodies through :func:`decode_body` instead, which
knows gzip and deflate (what HTTP clients send) and inflates at most ``limit`` bytes: a few kB of
gzip can hold gigabytes.
"""

from __future__ import annotations

import zlib

__all__ = ["READ_CODINGS", "TrailingData", "UnsupportedCoding", "decode_body"]

#: The content codings read here (``identity`` and none: the body as it is)
READ_CODINGS = ("gzip", "x-gzip", "deflate")


class UnsupportedCoding(ValueError):
    """A content coding this module does not read (``br``, ``zstd``, anything unknown)."""

    def __init__(self, coding: str) -> None:
        super().__init__(f"content encoding {coding!r} is not read here")
        self.coding = coding


def decode_body(body: bytes, encoding: str | None, limit: int) -> bytes | None:
    """``body`` without its content coding ``encoding`` (the ``Content-Encoding`` header's value);
    None when it inflates past ``limit`` bytes. Raises :class:`UnsupportedCoding` for a coding
    that is not read, :class:`zlib.error` for a body that is not in its coding.

    A gzip body may hold several members (RFC 1952; ``cat a.gz b.gz``, a logger that compresses
    each flush): every one is inflated, all of them together held to ``limit``. Bytes after the
    end of the last stream are an error (:class:`TrailingData`), never ignored: the events in them
    were dropped unseen when only the first member was read."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("identity", ""):
        return body
    if enc in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, limit, members=True)
    if enc == "deflate":  # zlib-wrapped as the RFC says, or raw deflate as some clients send it
        try:
            return _inflate(body, zlib.MAX_WBITS, limit)
        except TrailingData:
            raise
        except zlib.error:
            return _inflate(body, -zlib.MAX_WBITS, limit)
    raise UnsupportedCoding(enc[:40])


class TrailingData(zlib.error):
    """Bytes after the end of a compressed stream that are not another gzip member."""


def _inflate(body: bytes, wbits: int, limit: int, members: bool = False) -> bytes | None:
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        d = zlib.decompressobj(wbits)
        out = d.decompress(rest, limit - size + 1)
        size += len(out)
        if size > limit:
            return None
        if not d.eof:
            raise zlib.error("incomplete or truncated stream")
        parts.append(out)
        rest = d.unused_data
        if not rest:
            return parts[0] if len(parts) == 1 else b"".join(parts)
        if not (members and rest[:2] == b"\x1f\x8b"):
            raise TrailingData(f"{len(rest)} bytes after the end of the compressed stream")
