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

__all__ = ["READ_CODINGS", "UnsupportedCoding", "decode_body"]

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
    that is not read, :class:`zlib.error` for a body that is not in its coding."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("identity", ""):
        return body
    if enc in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, limit)
    if enc == "deflate":  # zlib-wrapped as the RFC says, or raw deflate as some clients send it
        try:
            return _inflate(body, zlib.MAX_WBITS, limit)
        except zlib.error:
            return _inflate(body, -zlib.MAX_WBITS, limit)
    raise UnsupportedCoding(enc[:40])


def _inflate(body: bytes, wbits: int, limit: int) -> bytes | None:
    d = zlib.decompressobj(wbits)
    out = d.decompress(body, limit + 1)
    if len(out) > limit:
        return None
    if not d.eof:
        raise zlib.error("incomplete or truncated stream")
    return out
