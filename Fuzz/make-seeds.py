#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (Fuzz/corpus/<Target>/), encoding frames straight from
docs/PROTOCOL.md -- an encoder independent of MicroFraming's -- and etcd gateway answers, service records and TLS
records from their specifications. Deterministic. Run from anywhere: Fuzz/make-seeds.py
With --hex, prints the frames of the protocol document's worked examples instead."""
import base64
import json
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


# --- Service records (MicroCore's Service as JSONEncoder writes it: fields in declaration order) ---

def service(name="greeter", version="v1", node="greeter-1", address="127.0.0.1:8081", node_md=None, md=None,
            endpoints=("Greeter.Hello",)):
    return {"name": name, "version": version, "metadata": md or {},
            "endpoints": [{"name": e, "metadata": {}} for e in endpoints],
            "nodes": [{"id": node, "address": address, "metadata": node_md or {}}]}


def jdump(value, sort=False):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort).encode()


def registry_node_seeds():
    """FuzzRegistryNode input: one control byte (0 service, 1 list of services, 2 node, 3 endpoint), then JSON."""
    go_micro = {  # as go-micro writes a service: endpoints with request/response descriptions, which are ignored
        "name": "go.micro.srv.greeter", "version": "latest", "metadata": {"protocol": "grpc"},
        "endpoints": [{"name": "Greeter.Hello",
                       "request": {"name": "Request", "type": "Request",
                                   "values": [{"name": "name", "type": "string", "values": None}]},
                       "response": {"name": "Response", "type": "Response", "values": []},
                       "metadata": {"stream": "false"}}],
        "nodes": [{"id": "go.micro.srv.greeter-7e1b", "address": "10.0.0.7:54321",
                   "metadata": {"broker": "http", "registry": "etcd", "server": "grpc", "transport": "grpc"}}]}
    records = [service(node="a"), service(node="b", version="v2"), service(node="a", address="127.0.0.1:9"),
               service(name="other", node="")]
    return {
        "service": b"\x00" + jdump(service(node_md={"dc": "eu", "weight": "10"}, md={"owner": "team-a"})),
        "service-sorted": b"\x00" + jdump(service(), sort=True),
        "service-go-micro": b"\x00" + jdump(go_micro),
        "service-minimal": b"\x00" + b'{"name":"a"}',
        "service-nulls": b"\x00" + b'{"name":"a","version":null,"metadata":null,"endpoints":null,"nodes":null}',
        "service-escapes": b"\x00" + b'{"name":"caf\\u00e9\\/\\ud83d\\ude00\\u0000","version":"\\t","nodes":[{"id":"\\"x\\"","address":""}]}',
        "service-wrong-type": b"\x00" + b'{"name":"a","version":1}',
        "services": b"\x01" + jdump(records),
        "node": b"\x02" + jdump({"id": "n-1", "address": "[::1]:8080", "metadata": {"weight": "10"}}),
        "endpoint": b"\x03" + jdump({"name": "Chat.Talk", "metadata": {"stream": "true"}}),
    }


def local_file_seeds():
    """FuzzLocalRegistryFile input: one control byte (which file name: 0 greeter/greeter-1.json, 1 caf%C3%A9/n%2F1.json,
    2 a hidden file, 3 a .json.tmp file, 4 a hidden directory), then the file: {"expires": seconds since 1970 or
    absent, "service": the service with its one node}, as LocalRegistry writes it (sorted keys)."""
    def record(expires=4102444800.0, svc=None):
        r = {"service": svc or service(node_md={"dc": "eu"})}
        if expires is not None:
            r["expires"] = expires
        return jdump(r, sort=True)
    two = service()
    two["nodes"].append({"id": "greeter-2", "address": "127.0.0.1:8082", "metadata": {}})
    return {
        "record": b"\x00" + record(),
        "record-no-expiry": b"\x01" + record(None, service(name="caf\u00e9", node="n/1")),
        "record-fraction": b"\x00" + record(4102444800.123456),
        "record-expired": b"\x00" + record(1.0),
        "record-two-nodes": b"\x00" + record(None, two),
        "record-no-node": b"\x00" + jdump({"service": {"name": "greeter"}}),
        "record-hidden-file": b"\x02" + record(),
        "record-tmp-suffix": b"\x03" + record(),
        "record-hidden-dir": b"\x04" + record(),
        "record-odd-names": b"\x00" + record(None, service(name="../x y", node=".h\u00e9/%41")),
        "record-long-name": b"\x00" + record(None, service(name="a" * 300)),
        "truncated": b"\x00" + record()[:40],
    }


# --- etcd v3 JSON gateway (protobuf JSON: int64 as strings, bytes as base64, default values omitted) ---

REGISTRY_PREFIX = "/micro/registry/"


def escape_key_component(name):
    """The registry's key escaping: letters, digits, '-', '_' and a '.' not in front stay; other bytes are %XX."""
    out = ""
    for i, b in enumerate(name.encode()):
        c = chr(b)
        if (c.isascii() and c.isalnum()) or c in "-_" or (c == "." and i > 0):
            out += c
        else:
            out += "%%%02X" % b
    return out


def etcd_key(svc):
    return REGISTRY_PREFIX + escape_key_component(svc["name"]) + "/" + escape_key_component(svc["nodes"][0]["id"])


def b64(data):
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def etcd_header(revision):
    return {"cluster_id": "14841639068965178418", "member_id": "10276657743932975437", "revision": str(revision),
            "raft_term": "2"}


def etcd_kv(svc, create=40, mod=41, version=1, lease=None):
    kv = {"key": b64(etcd_key(svc)), "create_revision": str(create), "mod_revision": str(mod), "version": str(version),
          "value": b64(jdump(svc))}
    if lease:
        kv["lease"] = str(lease)
    return kv


def watch(revision, events=None, **fields):
    result = {"header": etcd_header(revision)}
    result.update(fields)
    if events:
        result["events"] = events
    return jdump({"result": result}) + b"\n"


def etcd_seeds():
    """FuzzEtcdJSON input: one control byte (the watch stream's chunk size, 0 = all at once), then the bytes of an
    answer: one JSON body, or the watch stream (newline-delimited messages) whose first line is the range answer
    the watch starts from."""
    a, b = service(node="greeter-1"), service(node="greeter-2", version="v2", address="127.0.0.1:8082")
    c = service(name="caf\u00e9 b\u00e4r", node="n/1")
    lease = 7587880563349396234
    rng = jdump({"header": etcd_header(42), "kvs": [etcd_kv(a, lease=lease), etcd_kv(b, 30, 30)], "count": "2"})
    a2 = service(node="greeter-1", address="127.0.0.1:9999")
    stream = (rng + b"\n"
              + watch(42, created=True)
              + watch(43, [{"kv": etcd_kv(c, 43, 43)}])
              + watch(44, [{"kv": etcd_kv(a2, 40, 44, 2)}])
              + watch(45, [{"type": "DELETE", "kv": {"key": b64(etcd_key(b)), "mod_revision": "45"},
                            "prev_kv": etcd_kv(b, 30, 30)}])
              + watch(46, [{"type": "DELETE", "kv": {"key": b64(etcd_key(c)), "mod_revision": "46"}}])
              + watch(46)  # progress notification
              + b'{"result":{"header":{"revision":"47"},"events":[{"kv":{"key":"L21pY3Jv')  # cut off
    compacted = (rng + b"\n" + watch(42, created=True)
                 + watch(50, compact_revision="48", canceled=True,
                         cancel_reason="mvcc: required revision has been compacted")
                 + watch(51, [{"kv": etcd_kv(c, 51, 51)}]))
    limit = str(2**63 - 1)
    return {
        "range": b"\x00" + rng,
        "range-empty": b"\x00" + jdump({"header": etcd_header(7)}),
        "range-numbers": b"\x00" + b'{"header":{"revision":42},"kvs":[{"key":"' + b64(etcd_key(a)).encode()
                         + b'","create_revision":40,"mod_revision":41,"value":"' + b64(jdump(a)).encode() + b'"}]}',
        "range-revision-limit": b"\x00" + jdump({"header": etcd_header(limit), "kvs": [etcd_kv(a, limit, limit)]}),
        "range-not-a-service": b"\x00" + jdump({"header": etcd_header(3), "kvs": [
            {"key": b64("/micro/registry/x/y"), "value": b64("not json")}, {"key": "!!", "value": "%%"}]}),
        "watch-stream": b"\x00" + stream,
        "watch-stream-7": b"\x07" + stream,
        "watch-stream-1": b"\x01" + stream,
        "watch-compacted": b"\x05" + compacted,
        "watch-revision-limit": b"\x00" + rng + b"\n" + watch(42, [{"kv": etcd_kv(c, limit, limit)}]),
        "watch-error": b"\x00" + rng + b"\n" + jdump({"error": {"grpc_code": 14, "http_code": 503,
                                                                "message": "etcdserver: no leader",
                                                                "http_status": "Service Unavailable",
                                                                "details": []}}) + b"\n",
        "lease-grant": b"\x00" + jdump({"header": etcd_header(42), "ID": str(lease), "TTL": "10"}),
        "lease-grant-error": b"\x00" + jdump({"header": etcd_header(42), "error": "etcdserver: too many requests"}),
        "keepalive": b"\x00" + jdump({"result": {"header": etcd_header(42), "ID": str(lease), "TTL": "10"}}),
        "keepalive-lost": b"\x00" + jdump({"result": {"header": etcd_header(42), "ID": str(lease)}}),
        "error-body": b"\x00" + jdump({"error": "etcdserver: requested lease not found", "code": 5,
                                       "message": "etcdserver: requested lease not found"}),
        "put-answer": b"\x00" + jdump({"header": etcd_header(43)}),
        "not-json": b"\x00" + b"404 page not found\n",
    }


# --- TLS records (RFC 8446, RFC 5246), as a client sends them to the server ---

def u24(v): return struct.pack(">I", v)[1:]


def record(content_type, body, version=0x0301):
    return bytes([content_type]) + u16(version) + u16(len(body)) + body


def handshake(msg_type, body):
    return bytes([msg_type]) + u24(len(body)) + body


def extension(ext_type, body):
    return u16(ext_type) + u16(len(body)) + body


def vector16(items):
    body = b"".join(items)
    return u16(len(body)) + body


X25519_BASE = bytes([9]) + bytes(31)  # the base point: a valid public key (of private key 1)
P256_G = bytes.fromhex("04"
                       "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                       "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")


def client_hello(tls13=True, alpn=("micro/1",), sni="localhost", key_share=True, groups=(0x001d, 0x0017),
                 ciphers=(0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xcca9)):
    """A ClientHello as OpenSSL's client sends one, with a fixed random and session id."""
    exts = []
    if sni:
        name = sni.encode()
        exts.append(extension(0, u16(len(name) + 3) + b"\x00" + u16(len(name)) + name))
    exts.append(extension(11, b"\x01\x00"))  # ec_point_formats: uncompressed
    exts.append(extension(10, vector16([u16(g) for g in groups])))
    exts.append(extension(35, b""))  # session_ticket
    if alpn:
        exts.append(extension(16, vector16([bytes([len(p)]) + p.encode() for p in alpn])))
    exts.append(extension(22, b""))  # encrypt_then_mac
    exts.append(extension(23, b""))  # extended_master_secret
    exts.append(extension(13, vector16([u16(a) for a in (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)])))
    if tls13:
        exts.append(extension(43, b"\x04\x03\x04\x03\x03"))  # supported_versions: 1.3, 1.2
        exts.append(extension(45, b"\x01\x01"))  # psk_key_exchange_modes: psk_dhe_ke
        shares = [u16(0x001d) + u16(32) + X25519_BASE] if key_share else []
        exts.append(extension(51, vector16(shares)))
    body = (u16(0x0303) + bytes(range(32)) + bytes([32]) + bytes(range(32, 64))
            + vector16([u16(c) for c in ciphers]) + b"\x01\x00" + vector16(exts))
    return handshake(1, body)


# A client certificate signed by the CA of Fuzz/Sources/FuzzTLSRecords/Identity.swift (its key is not kept).
CLIENT_CERTIFICATE = base64.b64decode(
    "MIIBgTCCASigAwIBAgIBAzAKBggqhkjOPQQDAjAeMRwwGgYDVQQDDBNzd2lmdC1taWNybyBmdXp6"
    "IENBMCAXDTI2MTIwMzE5MDY1MloYDzIxMjYxMTA5MTkwNjUyWjAcMRowGAYDVQQDDBFtaWNybyBm"
    "dXp6IGNsaWVudDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABO+pAhaA1iWHNJ+5bSEhGgjZKy27"
    "gIv0nnqFAQfVvwOgU8rfAuWackXETrkFyVM2b7qDGiLffxqFk1zzC70CD76jVzBVMBMGA1UdJQQM"
    "MAoGCCsGAQUFBwMCMB0GA1UdDgQWBBSSv/+4GZEbSdBaNm9966wfDMEOCTAfBgNVHSMEGDAWgBSE"
    "ccHE4mScnmEAcfOBGrN45jcgnzAKBggqhkjOPQQDAgNHADBEAiBRMvUwEkWpelC3aYT+4RH69CYv"
    "2o/Dd3huuWwcg1MfbgIgIAdgOZw8aovlX/piIvcXpPJaM8SvzSFaZQBXIO8G6gE=")


def tls_seeds():
    """FuzzTLSRecords input: one control byte (bits 0-1 the server: 0 TLS 1.2+1.3, 1 TLS 1.3 only, 2 mTLS, 3 no
    ALPN; bit 2 a small scratch buffer; bits 3-7 the size of the pieces - 1), then what the client sent."""
    hello13 = record(22, client_hello())
    hello12_body = client_hello(tls13=False, groups=(0x0017,), ciphers=(0xc02b, 0xc02c, 0xcca9))
    hello12 = record(22, hello12_body)
    # TLS 1.2 second flight: the client's ECDHE share, ChangeCipherSpec, a Finished that cannot decrypt.
    key_exchange = record(22, handshake(16, bytes([len(P256_G)]) + P256_G), 0x0303)
    ccs = record(20, b"\x01", 0x0303)
    finished = record(22, bytes(range(40)), 0x0303)
    certificate = record(22, handshake(11, u24(len(CLIENT_CERTIFICATE) + 3) + u24(len(CLIENT_CERTIFICATE)) + CLIENT_CERTIFICATE), 0x0303)
    certificate_verify = record(22, handshake(15, u16(0x0403) + u16(72) + bytes([0x30, 70]) + bytes(70)), 0x0303)
    # TLS 1.3: after the ServerHello, a compatibility ChangeCipherSpec and an encrypted record that cannot decrypt.
    encrypted = record(23, bytes(range(53)), 0x0303)
    fragments = b"".join(record(22, hello13[5:][i:i + 7]) for i in range(0, len(hello13) - 5, 7))
    return {
        "hello13": b"\x00" + hello13,
        "hello13-pieces-3": b"\x10" + hello13 + ccs + encrypted,
        "hello13-small-scratch": b"\x05" + hello13 + ccs + encrypted,
        "hello13-no-alpn": b"\x0b" + record(22, client_hello(alpn=None, sni=None)),
        "hello13-other-alpn": b"\x00" + record(22, client_hello(alpn=("h2", "http/1.1"))),
        "hello-retry": b"\x01" + record(22, client_hello(key_share=False)) + ccs + hello13,
        "hello12": b"\x00" + hello12 + key_exchange + ccs + finished,
        "hello12-pieces-1": b"\x04" + hello12 + key_exchange + ccs + finished,
        "hello12-to-tls13-only": b"\x01" + hello12,
        "hello12-mtls": b"\x02" + hello12 + certificate + key_exchange + certificate_verify + ccs + finished,
        "hello12-mtls-no-certificate": b"\x02" + hello12 + record(22, handshake(11, u24(0)), 0x0303) + key_exchange,
        "hello13-mtls": b"\x02" + hello13 + ccs + encrypted,
        "hello-fragmented": b"\x00" + fragments,
        "hello-truncated": b"\x00" + hello13[:len(hello13) // 2],
        "hello-bad-record-length": b"\x00" + hello13[:3] + u16(0x4801) + hello13[5:],
        "hello-bad-handshake-length": b"\x00" + hello13[:6] + u24(0xFFFF) + hello13[9:],
        "hello-twice": b"\x00" + hello13 + hello13,
        "alert-before-hello": b"\x00" + record(21, b"\x02\x28"),
        "close-notify-after-hello": b"\x08" + hello13 + record(21, b"\x01\x00", 0x0303),
        "application-data-first": b"\x00" + record(23, b"GET / HTTP/1.1\r\n\r\n"),
        "heartbeat": b"\x00" + record(24, b"\x01\x40\x00" + bytes(16)),
        "empty-records": b"\x00" + record(22, b"") * 3 + hello13,
        # The SSLv2-compatible ClientHello (RFC 5246 appendix E.2): TLS 1.2, three ECDHE suites, a 16-byte challenge.
        "sslv2-hello": b"\x00" + bytes.fromhex("8025" "01" "0303" "000c" "0000" "0010" "00c02b" "00c02f" "00cca9" "0000ff")
                       + bytes(range(16)),
        "http": b"\x00" + b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
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
    write(os.path.join(here, "corpus", "FuzzEtcdJSON"), etcd_seeds())
    write(os.path.join(here, "corpus", "FuzzRegistryNode"), registry_node_seeds())
    write(os.path.join(here, "corpus", "FuzzLocalRegistryFile"), local_file_seeds())
    write(os.path.join(here, "corpus", "FuzzTLSRecords"), tls_seeds())


if __name__ == "__main__":
    main()
