#!/usr/bin/python3
"""Writes the TDS seed corpora corpus/tds_<target>/ from the vectors in tests/vectors/tds/.

Run it again after changing the vectors. Crash reproducers added by hand (named crash-*)
are left alone.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "vectors", "tds")


def wire(name):
    with open(os.path.join(VECTORS, name + ".hex")) as f:
        return bytes.fromhex(" ".join(l for l in f if l.strip() and not l.startswith("#")))


def payload(name):
    w, out = wire(name), b""
    while w:
        n = int.from_bytes(w[2:4], "big")
        out += w[8:n]
        w = w[n:]
    return out


def write(target, name, data):
    d = os.path.join(HERE, "corpus", "tds_" + target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


ALL = sorted(f[:-4] for f in os.listdir(VECTORS) if f.endswith(".hex"))
REQUESTS = [n for n in ALL if n.endswith("-request") and ("rpc" in n or "batch" in n)]
RESPONSES = [n for n in ALL if n.endswith("-response") and "prelogin" not in n]
VERSION_OF = {"real-tds71-commit-batch-response": 1}  # first byte: bit 0 = TDS 7.1

# Packet assembler: a config byte (packet limit 8 + 16 * byte; chunk size low nibble + 1),
# then the raw packets.
for n in ALL:
    write("packet", n, bytes([0xFF]) + wire(n))
write("packet", "two-messages", bytes([0xF3]) + wire(REQUESTS[0]) + wire("mstds-4.10-attention"))
split = payload("real-rpc-sp_prepexec-request")
pk = lambda status, body, pid: bytes([3, status]) + (len(body) + 8).to_bytes(2, "big") + bytes(
    [0, 0, pid, 0]) + body
write("packet", "status-0x04-continuation", bytes([0xFF]) + pk(0x04, split[:100], 1) +
      pk(0x01, split[100:], 2))
write("packet", "length-under-8", bytes([0xFF]) + bytes.fromhex("01 01 00 04 00 00 01 00"))

for n in ("mstds-4.1-prelogin-request", "real-sql2008-prelogin-response"):
    write("prelogin", n, payload(n))

login = payload("mstds-4.2-login7-request")
write("login7", "mstds-4.2-login7-request", login)
# Each offset/length pair pointed out of range, at 0xFFFF, and with a 0xFFFF length.
for at in (36, 40, 44, 48, 52, 56, 60, 64, 68, 78, 82, 86):
    for tag, off, ln in (("offset-ffff", 0xFFFF, 1), ("length-ffff", 0x80, 0xFFFF),
                         ("past-end", len(login) - 1, 4), ("into-fixed", 10, 2)):
        b = bytearray(login)
        struct.pack_into("<HH", b, at, off, ln)
        write("login7", "%s-at-%d" % (tag, at), bytes(b))
b = bytearray(login)
b[27] |= 0x10  # fExtension, the pointer left at zero
write("login7", "extension-without-pointer", bytes(b))
b = bytearray(login)
struct.pack_into("<I", b, 0, 0xFFFFFFFF)
write("login7", "length-ffffffff", bytes(b))

for n in REQUESTS:
    write("request", n, payload(n))
# A TM begin-transaction request with ALL_HEADERS.
tm = bytes.fromhex("16000000 12000000 0200 0000000000000000 01000000 0500 02 02") + "t1".encode(
    "utf-16-le")
write("request", "tm-begin", tm)

for n in RESPONSES:
    write("token_scanner", n, bytes([VERSION_OF.get(n, 0), 3]) + payload(n))
write("token_scanner", "attention-ack", bytes([2, 1]) + payload("mstds-4.7-sqlbatch-response") +
      bytes.fromhex("fd 2000 0000 0000000000000000"))
