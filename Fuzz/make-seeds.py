#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (Fuzz/corpus/<Target>/), encoding frames straight from
docs/PROTOCOL.md -- an encoder independent of MicroFraming's. Run from anywhere: Fuzz/make-seeds.py
With --hex, prints the frames of the protocol document's worked examples instead."""
import os
import struct
import sys

# Frame types (PROTOCOL.md section 4) and flags.
SETTINGS, REQUEST, RESPONSE, DATA, END, CANCEL, WINDOW, PING, DRAIN = range(9)
ACK = END_STREAM = 0x1
HAS_MESSAGE = 0x2
PREFACE = b"MICRO/1\n"


def u16(v): return struct.pack(">H", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)


def s16(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return u16(len(b)) + b


def frame(ftype, flags, stream, payload=b""):
    """Section 3: length u32, type u8, flags u8, stream u32, then the payload."""
    return u32(len(payload)) + bytes([ftype, flags]) + u32(stream) + payload


def metadata(pairs):
    """Section 6.1: count u16, then key and value, each u16 length + UTF-8."""
    return u16(len(pairs)) + b"".join(s16(k) + s16(v) for k, v in pairs)


def request_head(service, endpoint, content_type="application/octet-stream", timeout_us=0, attempt=1, md=()):
    """Section 6.2."""
    return s16(service) + s16(endpoint) + s16(content_type) + u64(timeout_us) + u16(attempt) + metadata(list(md))


def status(kind=0, code=0, message=""):
    """Section 6.3: kind u8 (0 OK, 1 ERROR, 2 NACK restartable, 3 NACK final), code u32, message."""
    return bytes([kind]) + u32(code) + s16(message)


def response_head(kind=0, code=0, message="", md=()):
    return status(kind, code, message) + metadata(list(md))


def settings(pairs=((1, 4 << 20), (2, 4096), (3, 1 << 20), (4, 1))):
    """Section 5: (id u16, value u32) pairs."""
    return b"".join(u16(i) + u32(v) for i, v in pairs)


def request(stream, head, message=None, end=False):
    flags = (END_STREAM if end else 0) | (HAS_MESSAGE if message is not None else 0)
    return frame(REQUEST, flags, stream, head + (message or b""))


def response(stream, head, message=None, end=False):
    flags = (END_STREAM if end else 0) | (HAS_MESSAGE if message is not None else 0)
    return frame(RESPONSE, flags, stream, head + (message or b""))


def data(stream, message, end=False):
    return frame(DATA, END_STREAM if end else 0, stream, message)


def end(stream, head=b""):
    return frame(END, 0, stream, head)


def cancel(stream, code, reason):
    return frame(CANCEL, 0, stream, u32(code) + s16(reason))


def window(stream, increment):
    return frame(WINDOW, 0, stream, u32(increment))


def ping(opaque, ack=False):
    return frame(PING, ACK if ack else 0, 0, opaque)


def drain(last, code, reason=""):
    return frame(DRAIN, 0, 0, u32(last) + u32(code) + s16(reason))


def lp(message):
    """Plain length-prefixed mode (section 9): length u32 + payload."""
    return u32(len(message)) + message


# The worked examples of PROTOCOL.md section 10 (also seeds).
UNARY_REQUEST = request(1, request_head("greeter", "Hello", "application/json", 250000, 1, [("trace-id", "abc")]),
                        b'{"n":"x"}', end=True)
UNARY_RESPONSE = response(1, response_head(0), b'{"m":"hi"}', end=True)
CLIENT_SETTINGS = frame(SETTINGS, 0, 0, settings())
SMALL_SETTINGS = frame(SETTINGS, 0, 0, settings(((1, 16 << 10), (2, 100), (3, 65536), (4, 1))))
SETTINGS_ACK = frame(SETTINGS, ACK, 0)
PING_FRAME = ping(bytes(range(1, 9)))
PONG_FRAME = ping(bytes(range(1, 9)), ack=True)


def examples():
    return [
        ("preface", PREFACE),
        ("client SETTINGS (defaults)", CLIENT_SETTINGS),
        ("server SETTINGS (small limits)", SMALL_SETTINGS),
        ("SETTINGS ack", SETTINGS_ACK),
        ("unary REQUEST", UNARY_REQUEST),
        ("unary RESPONSE", UNARY_RESPONSE),
        ("PING", PING_FRAME),
        ("PING ack", PONG_FRAME),
        ("streaming REQUEST (no message)", request(3, request_head("chat", "Talk"))),
        ("streaming RESPONSE (head only)", response(3, response_head(0))),
        ("DATA", data(3, b"abc")),
        ("client END", end(3)),
        ("WINDOW", window(3, 3)),
        ("server END with trailers", end(3, response_head(1, 13, "boom", [("retry", "no")]))),
        ("NACK refused", response(5, response_head(2, 8, "too many streams"), end=True)),
        ("CANCEL", cancel(7, 6, "deadline")),
        ("DRAIN graceful", drain(7, 0, "")),
        ("DRAIN error", drain(9, 4, "frame too big")),
        ("plain length-prefixed", lp(b"hi")),
    ]


def framing_seeds():
    """FuzzFraming input: one control byte (bits 0-5 chunk size, 0 = all at once; bit 6 plain mode;
    bit 7 direct reads), then the byte stream."""
    md = [("trace-id", "4bf92f3577b34da6"), ("Authorization", "Bearer x"), ("k", "")]
    client = (CLIENT_SETTINGS + SETTINGS_ACK + UNARY_REQUEST
              + request(3, request_head("chat", "Talk", timeout_us=0, attempt=2, md=md), b"first")
              + data(3, b"second") + data(3, b"", end=True) + window(3, 1024) + cancel(3, 6, "caller gave up")
              + PONG_FRAME + end(5))
    server = (SMALL_SETTINGS + SETTINGS_ACK + UNARY_RESPONSE
              + response(3, response_head(0, md=[("server", "a")]), None) + data(3, b"x" * 40)
              + end(3, response_head(0, md=[("grpc-status", "0")]))
              + response(5, response_head(2, 8, "refused"), end=True)
              + response(7, response_head(3, 42, "bad request"), b"", end=True)
              + PING_FRAME + drain(7, 0, "shutting down") + drain(9, 1, "stream id went backwards"))
    unknown = frame(0x2A, 0xFF, 9, b"ignored") + frame(WINDOW, 0, 0, u32(5)) + ping(b"\xff" * 8)
    big = data(11, bytes(range(256)) * 80)  # 20 KiB: spans many reads, and the direct-read path
    return {
        "client-all-at-once": b"\x00" + client,
        "client-1-byte-reads": b"\x01" + client,
        "server-7-byte-reads": b"\x07" + server,
        "server-direct-13": b"\x8d" + server,
        "unknown-type": b"\x03" + unknown,
        "large-data-direct": b"\x80" + big + PING_FRAME,
        "large-data-chunks": b"\x3f" + big,
        "oversized-length": b"\x00" + UNARY_RESPONSE + u32(0x7FFFFFFF) + bytes([DATA, 0]) + u32(1),
        "truncated-tail": b"\x05" + UNARY_REQUEST + UNARY_RESPONSE[:-3],
        "plain-mode": b"\x42" + lp(b"hello") + lp(b"") + lp(b"x" * 300) + lp(b"tail")[:3],
        "plain-mode-direct": b"\xc9" + lp(b"y" * 5000) + lp(b"z"),
    }


def settings_seeds():
    return {
        "defaults": settings(),
        "small": settings(((1, 16 << 10), (2, 0), (3, 0), (4, 1))),
        "limits": settings(((1, 64 << 20), (2, 0xFFFFFFFF), (3, 0x7FFFFFFF))),
        "unknown-ids": settings(((0, 7), (5, 1), (0xFFFF, 0xFFFFFFFF), (1, 32768))),
        "duplicates": settings(((3, 10), (3, 20), (2, 1), (2, 2))),
        "empty": b"",
        "bad-version": settings(((4, 2),)),
        "bad-frame-size": settings(((1, 1024),)),
        "bad-window": settings(((3, 0x80000000),)),
        "not-multiple-of-6": settings()[:-1],
    }


def heads_seeds():
    """FuzzHeads input: one control byte (0 request head, 1 request head through an interner, 2 response head,
    3 metadata), then the payload (PROTOCOL.md section 6)."""
    md = [("trace-id", "4bf92f3577b34da6"), ("Authorization", "Bearer x"), ("k", ""), ("caf\u00e9", "\u00fc")]
    req = request_head("greeter", "Greeter.Hello", "application/json", timeout_us=250000, attempt=2, md=md)
    return {
        "request": b"\x00" + req,
        "request-interned": b"\x01" + req,
        "request-truncated": b"\x00" + req[:-3],
        "response-ok": b"\x02" + response_head(0, md=[("server", "a")]),
        "response-error": b"\x02" + response_head(3, 42, "bad request", md=md),
        "metadata": b"\x03" + metadata(md),
        "metadata-empty": b"\x03" + metadata([]),
    }


def http_request_seeds():
    """FuzzHTTPRequest input: one control byte (low 4 bits: slice size - 1; bit 4: small limits), then the bytes
    a client sent to the sidecar."""
    hello = b'{"name": "Ada"}'
    post = (b"POST /greeter/Greeter.Hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
            b"X-Micro-Timeout: 250ms\r\nX-Micro-Meta-Tenant: acme\r\nContent-Length: %d\r\n\r\n" % len(hello) + hello)
    chunked = (b"POST /greeter/Echo.Call HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    get = b"GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"
    return {
        "post-whole": b"\x0f" + post,
        "post-1-byte": b"\x00" + post,
        "pipelined": b"\x06" + post + get + chunked + b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "chunked-small-limits": b"\x13" + chunked,
        "expect-continue": b"\x04" + b"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        "leading-empty-lines": b"\x02" + b"\r\n\n" + get.replace(b"\r\n", b"\n"),
        "smuggling": b"\x0f" + b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "tls-hello": b"\x0f" + bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]) + bytes(32),
        "oversized": b"\x1f" + b"GET /" + b"a" * 60 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    }


def write(directory, seeds):
    os.makedirs(directory, exist_ok=True)
    for name, blob in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(blob)


def main():
    if "--hex" in sys.argv:
        for name, blob in examples():
            print(f"{name} ({len(blob)} bytes):\n  {blob.hex(' ')}")
        return
    here = os.path.dirname(os.path.abspath(__file__))
    write(os.path.join(here, "corpus", "FuzzFraming"), framing_seeds())
    write(os.path.join(here, "corpus", "FuzzSettings"), settings_seeds())
    write(os.path.join(here, "corpus", "FuzzHTTPRequest"), http_request_seeds())
    write(os.path.join(here, "corpus", "FuzzHeads"), heads_seeds())


if __name__ == "__main__":
    main()
