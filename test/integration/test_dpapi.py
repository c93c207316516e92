#!/usr/bin/python3
"""The datapath API under bad input: raw datagrams on gldp's socket.

Every malformed, truncated or oversized message gets an error reply naming what is wrong
(or, when it cannot be framed at all, a clean close of that connection only); gldp keeps
serving, and other clients are unaffected.
"""

import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from gltest import Env, check, main  # noqa: E402

MAGIC = 0x50444C47
HDR = struct.Struct("<IHHIIiHH")  # magic version type length xid error flags reserved
T_INFO, T_PORT_ADD, T_FLOW_PUT, T_FLOW_GET, T_EXEC_BATCH = 1, 2, 10, 12, 21
EINVAL, EMSGSIZE, EPROTONOSUPPORT, EOPNOTSUPP = 22, 90, 93, 95
KEY_SIZE = 136


def conn(env):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(env.sock)
    return s


def msg(mtype, payload=b"", xid=7, version=1, length=None, flags=0, reserved=0):
    n = HDR.size + len(payload) if length is None else length
    return HDR.pack(MAGIC, version, mtype, n, xid, 0, flags, reserved) + payload


def reply(s):
    data = s.recv(70000)
    check(len(data) >= HDR.size, f"short reply {data!r}")
    magic, ver, mtype, length, xid, err, flags, _ = HDR.unpack_from(data)
    check(magic == MAGIC and flags & 1, "reply header")
    text = data[HDR.size:].split(b"\0")[0].decode(errors="replace")
    return err, text, data


def expect_error(s, raw, code, words):
    s.send(raw)
    err, text, _ = reply(s)
    check(err == code, f"error {err}, want {code} ({text})")
    check(words in text, f"error text '{text}' does not mention '{words}'")


def flow_put_entry(actions=b"", ufid=(1, 2), flags=1):
    key = bytearray(KEY_SIZE)
    mask = bytearray(KEY_SIZE)
    struct.pack_into("<I", key, 0, 1)           # in_port 1
    struct.pack_into("<I", mask, 0, 0xFFFFFFFF)
    e = struct.pack("<QQII", ufid[0], ufid[1], flags, len(actions)) + bytes(key) + bytes(mask)
    pad = (-len(actions)) % 8
    return e + actions + b"\0" * pad


def test_bad_messages():
    with Env("d") as env:
        env.gldp(ports=[("n1", "net_null0"), ("n2", "net_null1")])
        s = conn(env)
        # Truncated payload for its type.
        expect_error(s, msg(T_PORT_ADD, b"abc"), EINVAL, "too short")
        # Length field lies.
        expect_error(s, msg(T_INFO, length=100), EINVAL, "length")
        # Reserved bits.
        expect_error(s, msg(T_INFO, reserved=1), EINVAL, "reserved")
        # Future version.
        expect_error(s, msg(T_INFO, version=9), EPROTONOSUPPORT, "version")
        # Unknown type.
        expect_error(s, msg(999), EOPNOTSUPP, "unknown request type")
        # Trailing junk.
        expect_error(s, msg(T_INFO, b"\0" * 8), EINVAL, "unexpected bytes")
        # Batch count larger than the entries present: nothing is installed.
        one = flow_put_entry(struct.pack("<HHI", 8, 1, 2))  # output:2
        expect_error(s, msg(T_FLOW_PUT, struct.pack("<II", 5, 0) + one), EINVAL,
                     "shorter than its count")
        # Actions length past the message.
        bad = bytearray(one)
        struct.pack_into("<I", bad, 20, 64)
        expect_error(s, msg(T_FLOW_PUT, struct.pack("<II", 1, 0) + bytes(bad)), EINVAL,
                     "run past")
        # Unknown action: the entry is refused by name, the message is fine.
        ct = struct.pack("<HH", 4, 12)  # OVS_ACTION_ATTR_CT, empty
        s.send(msg(T_FLOW_PUT, struct.pack("<II", 1, 0) + flow_put_entry(ct)))
        err, _, data = reply(s)
        check(err == 0, f"batch reply error {err}")
        n, = struct.unpack_from("<I", data, HDR.size)
        e_err, = struct.unpack_from("<i", data, HDR.size + 8)
        e_msg = data[HDR.size + 8 + 40:HDR.size + 8 + 40 + 128].split(b"\0")[0].decode()
        check(n == 1 and e_err == EINVAL and "ct" in e_msg, f"entry error {e_err} '{e_msg}'")
        check("no flows" in env.dpctl("dump-flows").stdout or
              env.dpctl("dump-flows").stdout.strip() == "", "a refused flow was installed")
        # Execute batches: a lying count or lengths execute nothing; a bad entry fails
        # alone while the others are sent.
        md = bytearray(KEY_SIZE)
        struct.pack_into("<I", md, 0, 1)  # in_port 1
        frame = bytes(range(64))
        out2 = struct.pack("<HHI", 8, 1, 2)
        ex = bytes(md) + struct.pack("<II", len(frame), len(out2)) + out2 + frame
        tx_before = env.port_stats("n2")["tx_packets"]
        expect_error(s, msg(T_EXEC_BATCH, struct.pack("<II", 3, 0) + ex + ex), EINVAL,
                     "shorter than its count")
        bad = bytearray(ex)
        struct.pack_into("<I", bad, KEY_SIZE, 4096)
        expect_error(s, msg(T_EXEC_BATCH, struct.pack("<II", 2, 0) + ex + bytes(bad)),
                     EINVAL, "run past")
        expect_error(s, msg(T_EXEC_BATCH, struct.pack("<II", 0, 0)), EINVAL, "entries")
        ct_ex = bytes(md) + struct.pack("<II", len(frame), 4) + ct + b"\0" * 4 + frame
        s.send(msg(T_EXEC_BATCH, struct.pack("<II", 3, 0) + ex + ct_ex + ex))
        err, _, data = reply(s)
        n, = struct.unpack_from("<I", data, HDR.size)
        errs = [struct.unpack_from("<i", data, HDR.size + 8 + i * 168)[0] for i in range(3)]
        check(err == 0 and n == 3 and errs == [0, EINVAL, 0], f"execute batch: {err} {n} {errs}")
        tx_after = env.port_stats("n2")["tx_packets"]
        check(tx_after == tx_before + 2, f"execute batch sent {tx_after - tx_before}, want 2")
        # Oversized datagram: error reply, then that connection is closed.
        s.send(msg(T_INFO, b"\0" * 70000))
        err, text, _ = reply(s)
        check(err == EMSGSIZE, f"oversized: error {err} {text}")
        check(s.recv(100) == b"", "connection stays open after an oversized message")
        # Garbage that is not our protocol at all: clean close of that connection only.
        g = conn(env)
        other = conn(env)
        g.send(b"GET / HTTP/1.0\r\n\r\n")
        check(g.recv(100) == b"", "garbage did not close the connection")
        other.send(msg(T_INFO))
        err, _, _ = reply(other)
        check(err == 0, "another client was affected")
        # Many clients at once.
        many = [conn(env) for _ in range(20)]
        for i, c in enumerate(many):
            c.send(msg(T_INFO, xid=100 + i))
        for i, c in enumerate(many):
            err, _, data = reply(c)
            xid = HDR.unpack_from(data)[4]
            check(err == 0 and xid == 100 + i, f"client {i}: err {err} xid {xid}")
        check(env.gldp_proc.poll() is None, "gldp died")
        env.dpctl("show")


def test_bad_sa_messages():
    T_SA_ADD, T_SA_DEL, T_SA_DUMP = 60, 61, 62
    ENOENT = 2
    with Env("s") as env:
        env.gldp(ports=[("n1", "net_null0")])
        s = conn(env)
        expect_error(s, msg(T_SA_ADD, b"\0" * 10), EINVAL, "too short")
        expect_error(s, msg(T_SA_ADD, b"\0" * 128), EINVAL, "unexpected bytes")
        expect_error(s, msg(T_SA_ADD, b"\0" * 120), EINVAL, "spi 0x0 is reserved")
        add = bytearray(120)
        struct.pack_into("<IBBBBBBBB", add, 0, 0x1000, 7, 0, 0, 0, 1, 64, 1, 0)
        expect_error(s, msg(T_SA_ADD, bytes(add)), EINVAL, "direction")
        struct.pack_into("<I", add, 116, 0x40)  # flags
        struct.pack_into("<B", add, 4, 1)
        expect_error(s, msg(T_SA_ADD, bytes(add)), EINVAL, "unknown sa add flags")
        expect_error(s, msg(T_SA_DEL, struct.pack("<IBBBBII", 0x1000, 5, 0, 0, 0, 0, 0)),
                     EINVAL, "direction")
        expect_error(s, msg(T_SA_DEL, struct.pack("<IBBBBII", 0x1234, 0, 0, 0, 0, 0, 0)),
                     ENOENT, "no outbound SA with spi 0x1234")
        expect_error(s, msg(T_SA_DEL, struct.pack("<IBBBBII", 0x1234, 0, 0, 0, 0, 3600001, 0)),
                     EINVAL, "exceeds the limit of one hour")
        expect_error(s, msg(T_SA_DEL, struct.pack("<IBBBB", 0x1234, 0, 0, 0, 0)), EINVAL,
                     "too short")
        expect_error(s, msg(T_SA_DUMP, struct.pack("<QII", 0, 2, 0)), EINVAL,
                     "unknown sa dump flags")
        s.send(msg(T_SA_DUMP, struct.pack("<QII", 0, 0, 0)))
        err, _, data = reply(s)
        nxt, n = struct.unpack_from("<QI", data, HDR.size)
        check(err == 0 and nxt == 0 and n == 0, f"empty dump: err {err} next {nxt} n {n}")
        check(env.gldp_proc.poll() is None, "gldp died")


def test_socket_permissions():
    with Env("p") as env:
        env.gldp(ports=[("n1", "net_null0")])
        mode = os.stat(env.sock).st_mode & 0o777
        check(mode == 0o600, f"socket mode {oct(mode)}, want 0o600")


if __name__ == "__main__":
    main([test_bad_messages, test_bad_sa_messages, test_socket_permissions])
