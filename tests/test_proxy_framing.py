"""The bytes the lean proxy's exchange writes: the request head it forwards and the response head
it relays, header by header, for the common case (framed as the headers are read) and for the
cases framed again (a ``Connection`` header naming others, a ``Content-Length`` kept in place).

The expected heads are written out by hand from the rules (:mod:`monitor.server.leanproxy`):
hop-by-hop headers and those ``Connection`` names are dropped (never the framing ones), ``Host``
is the upstream's, the other headers keep their order and spelling; a buffered answer gets its
``Content-Length`` anew after its headers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from monitor.server.leanproxy import _Exchange
from monitor.server.proxyroutes import Target


def _exchange(method: bytes, headers: list[tuple[bytes, bytes]], written: list[bytes],
              version: str = "1.1", keep_alive: bool = True) -> _Exchange:
    sink = SimpleNamespace(tapping=lambda: None, answered=lambda *a: None, count=lambda *a: None,
                           request_time=lambda *a: None)
    lean = SimpleNamespace(wanted=frozenset({b"expect", b"x-request-id", b"content-encoding"}), prefix=b"/base",
                           host_header=b"model:8080", sink=sink, pool=SimpleNamespace(release=lambda up, keep: None),
                           max_body=1 << 20, client_header=None, loop=SimpleNamespace(time=lambda: 0.0), timeout=60.0)
    conn = SimpleNamespace(lean=lean, peer="127.0.0.1", write=written.append, exchange_done=lambda ex: None)
    return _Exchange(conn, method, b"/v2/models/iris/infer?x=1", version, headers, keep_alive,
                     Target(False, None, "iris", "infer"))


def _answer(ex: _Exchange, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    ex.response_head(status, reason, headers, True)
    if body:
        ex.response_body(body)
    ex.response_done(SimpleNamespace(closed=False), False)


def test_the_request_head_drops_hop_by_hop_and_listed_headers_and_keeps_the_rest_in_order() -> None:
    written: list[bytes] = []
    ex = _exchange(b"POST", [(b"Host", b"client.example"), (b"X-A", b"1"), (b"Connection", b"X-Drop, Content-Length"),
                             (b"X-Drop", b"gone"), (b"Content-Type", b"application/json"), (b"Keep-Alive", b"5"),
                             (b"Content-Length", b"2"), (b"x-request-id", b"r1")], written)
    assert ex.out == [b"POST /base/v2/models/iris/infer?x=1 HTTP/1.1\r\nHost: model:8080\r\nX-A: 1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 2\r\nx-request-id: r1\r\n\r\n"]
    assert ex.meta == {b"x-request-id": b"r1"}


def test_a_chunked_request_is_forwarded_chunked_without_its_own_transfer_encoding_line() -> None:
    ex = _exchange(b"POST", [(b"Transfer-Encoding", b"Chunked"), (b"X-B", b"2")], [])
    assert ex.out == [b"POST /base/v2/models/iris/infer?x=1 HTTP/1.1\r\nHost: model:8080\r\nX-B: 2\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n"]
    ex.request_body(b"{}")
    ex.request_done()
    assert ex.out[1:] == [b"2\r\n{}\r\n", b"0\r\n\r\n"]


def test_a_buffered_answer_gets_its_length_anew_after_its_headers() -> None:
    written: list[bytes] = []
    ex = _exchange(b"POST", [(b"Content-Length", b"0")], written)
    ex.request_done()
    _answer(ex, 200, b"OK", [(b"Content-Type", b"application/json"), (b"Content-Length", b"2"), (b"Date", b"d"),
                             (b"Server", b"s"), (b"Keep-Alive", b"timeout=5")], b"{}")
    assert written == [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: d\r\nServer: s\r\n"
                       b"Content-Length: 2\r\n\r\n{}"]


def test_headers_an_answers_connection_header_names_are_dropped_but_never_its_framing() -> None:
    written: list[bytes] = []
    ex = _exchange(b"GET", [], written)
    ex.request_done()
    _answer(ex, 201, b"Created", [(b"X-Keep", b"1"), (b"Connection", b"x-drop, content-length"), (b"X-Drop", b"0"),
                                  (b"Content-Length", b"3"), (b"X-Last", b"2")], b"abc")
    assert written == [b"HTTP/1.1 201 Created\r\nX-Keep: 1\r\nX-Last: 2\r\nContent-Length: 3\r\n\r\nabc"]


def test_a_head_answer_keeps_its_content_length_where_it_was() -> None:
    written: list[bytes] = []
    ex = _exchange(b"HEAD", [], written)
    ex.request_done()
    _answer(ex, 200, b"OK", [(b"Content-Length", b"42"), (b"ETag", b"e")], b"")
    assert written == [b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\nETag: e\r\n\r\n"]


def test_an_answer_too_large_to_buffer_is_relayed_with_its_length_in_place_and_http_1_0_is_kept_alive() -> None:
    written: list[bytes] = []
    ex = _exchange(b"GET", [], written, version="1.0")
    ex.request_done()
    big = 2 << 20
    ex.response_head(200, b"OK", [(b"X-A", b"1"), (b"Content-Length", b"%d" % big), (b"Proxy-Connection", b"x")], True)
    assert written == [b"HTTP/1.0 200 OK\r\nX-A: 1\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n" % big]


def test_a_chunked_answer_is_rechunked_and_a_close_delimited_one_to_a_1_0_client_closes() -> None:
    written: list[bytes] = []
    ex = _exchange(b"GET", [], written)
    ex.request_done()
    _answer(ex, 200, b"OK", [(b"Transfer-Encoding", b"chunked"), (b"X-A", b"1")], b"{}")
    assert written == [b"HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n", b"2\r\n{}\r\n", b"0\r\n\r\n"]
    written.clear()
    ex = _exchange(b"GET", [], written, version="1.0")
    ex.request_done()
    ex.response_head(200, b"OK", [(b"X-A", b"1")], False)
    assert written == [b"HTTP/1.0 200 OK\r\nX-A: 1\r\nConnection: close\r\n\r\n"]


def test_header_names_are_matched_whatever_their_case_and_many_names_stay_bounded() -> None:
    from monitor.server import leanproxy

    written: list[bytes] = []
    ex = _exchange(b"GET", [], written)
    ex.request_done()
    _answer(ex, 200, b"OK", [(b"CONTENT-LENGTH", b"1"), (b"connection", b"X-GONE"), (b"x-gone", b"1")], b"a")
    assert written == [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"]
    names: list[Any] = [b"X-Name-%d" % i for i in range(3000)] + [b"X-" + b"n" * 500]
    ex = _exchange(b"GET", [(n, b"v") for n in names], [])
    assert ex.out is not None and ex.out[0].count(b": v\r\n") == len(names)
    assert len(leanproxy._LOWER) <= leanproxy._LOWER_MAX
    assert all(len(n) <= leanproxy._LOWER_NAME_MAX for n in leanproxy._LOWER)
