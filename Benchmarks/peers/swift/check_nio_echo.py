#!/usr/bin/env python3
# usage: check_nio_echo.py PORT [tls]   (checks a running framed-echo server; tls = no verification)
# Checks a framed-echo server: several frames in one write, a frame split over writes,
# a 64 KiB frame, a 1 MiB frame, and that an over-16-MiB length closes the connection.
import socket, ssl, struct, sys, time, os
port = int(sys.argv[1]); use_tls = len(sys.argv) > 2 and sys.argv[2] == "tls"

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if use_tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="localhost")
    return s

def frame(p): return struct.pack(">I", len(p)) + p

def recv_exact(s, n):
    b = bytearray()
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError("closed after %d/%d bytes" % (len(b), n))
        b += c
    return bytes(b)

s = connect()
# 1. several frames in one write (incl. an empty one)
payloads = [b"hello", b"", os.urandom(100), b"x" * 7, os.urandom(3000)]
blob = b"".join(frame(p) for p in payloads)
s.sendall(blob)
assert recv_exact(s, len(blob)) == blob, "multi-frame echo mismatch"
print("ok: %d frames in one write" % len(payloads))
# 2. one frame split over writes (inside the header, then inside the payload)
p = os.urandom(500); f = frame(p)
for chunk in (f[:2], f[2:3], f[3:50], f[50:]):
    s.sendall(chunk); time.sleep(0.05)
assert recv_exact(s, len(f)) == f, "split-frame echo mismatch"
print("ok: frame split over 4 writes")
# 3. 64 KiB frame, and 1 MiB
for n in (64 * 1024, 1 << 20):
    p = os.urandom(n); f = frame(p)
    s.sendall(f)
    assert recv_exact(s, len(f)) == f, "%d-byte echo mismatch" % n
    print("ok: %d-byte frame" % n)
# 4. pipelined: 1000 small frames then read back
blob = b"".join(frame(struct.pack(">I", i) * 4) for i in range(1000))
s.sendall(blob)
assert recv_exact(s, len(blob)) == blob, "pipelined echo mismatch"
print("ok: 1000 pipelined frames")
s.close()
# 5. too-large length (16 MiB + 1) closes the connection
s = connect()
s.sendall(struct.pack(">I", (16 << 20) + 1) + b"abc")
try:
    d = s.recv(10)
    assert d == b"", "expected close, got %r" % d
except (ConnectionResetError, ssl.SSLError, ssl.SSLEOFError):
    pass
print("ok: over-16-MiB frame closes the connection")
# 6. exactly 16 MiB payload is accepted
s = connect()
p = os.urandom(16 << 20); f = frame(p)
import threading
t = threading.Thread(target=s.sendall, args=(f,)); t.start()
got = recv_exact(s, len(f)); t.join()
assert got == f, "16 MiB echo mismatch"
print("ok: 16 MiB frame")
s.close()
print("ALL OK (%s)" % ("tls" if use_tls else "plain"))
