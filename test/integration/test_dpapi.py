#!/usr/bin/python3
"""The datapath API under bad input: raw datagrams on gldp's socket.

test_ct_messages checks every connection-tracking message the same way, and the replies'
layout byte by byte against connections made by executing ct(commit) on scapy packets.
test_tp_ipf_messages does the same for timeout policies (a connection committed with
ct(timeout="7") gets policy 7's timeout) and fragment reassembly (fragments executed
through ct() are held, listed, reassembled and counted).

Every malformed, truncated or oversized message gets an error reply naming what is wrong
(or, when it cannot be framed at all, a clean close of that connection only); gldp keeps
serving, and other clients are unaffected.
"""

import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from gltest import Env, check, main, run  # noqa: E402

MAGIC = 0x50444C47
HDR = struct.Struct("<IHHIIiHH")  # magic version type length xid error flags reserved
T_INFO, T_PORT_ADD, T_FLOW_PUT, T_FLOW_GET, T_EXEC_BATCH = 1, 2, 10, 12, 21
EINVAL, EMSGSIZE, EPROTONOSUPPORT, EOPNOTSUPP, ESTALE = 22, 90, 93, 95, 116
KEY_SIZE = 184


def conn(env):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(env.sock)
    return s


def msg(mtype, payload=b"", xid=7, version=3, length=None, flags=0, reserved=0):
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
        # An action gldp does not have: the entry is refused by name, the message is fine.
        trunc = struct.pack("<HHI", 8, 13, 100)  # OVS_ACTION_ATTR_TRUNC(max_len=100)
        s.send(msg(T_FLOW_PUT, struct.pack("<II", 1, 0) + flow_put_entry(trunc)))
        err, _, data = reply(s)
        check(err == 0, f"batch reply error {err}")
        n, = struct.unpack_from("<I", data, HDR.size)
        e_err, = struct.unpack_from("<i", data, HDR.size + 8)
        e_msg = data[HDR.size + 8 + 40:HDR.size + 8 + 40 + 128].split(b"\0")[0].decode()
        check(n == 1 and e_err == EINVAL and "trunc" in e_msg, f"entry error {e_err} '{e_msg}'")
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
        bad_ex = bytes(md) + struct.pack("<II", len(frame), len(trunc)) + trunc + frame
        s.send(msg(T_EXEC_BATCH, struct.pack("<II", 3, 0) + ex + bad_ex + ex))
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


T_FW_BEGIN, T_FW_IPCACHE, T_FW_PORT, T_FW_RULES, T_FW_COMMIT, T_FW_CLEAR, T_FW_STATUS = range(90, 97)
T_FW_QUARANTINE, T_FW_HOSTS = 102, 103
EPROTO, ENODEV = 71, 19


def fw_prefix(ip4, identity, family=4, length=32, host=0):
    return struct.pack("<BBHI", family, length, host, identity) + bytes(ip4) + bytes(12)


def fw_port(port_no, identity=10, defaults=(0, 0), n_ipv4=0, pad=b"\0" * 7, flags=0):
    return struct.pack("<IIIBBHH", port_no, identity, 0, defaults[0], defaults[1], n_ipv4,
                       0) + bytes(6) + bytes([flags]) + pad


def fw_status(s):
    data = ok_reply(s, msg(T_FW_STATUS), "fw status")
    return struct.unpack_from("<Q", data)[0]


def test_fw_messages():
    """The firewall's transaction on the API socket with hostile input: messages out of
    order, malformed, truncated (counts larger than what follows), oversized counts. Each
    is refused with an error that names the problem, a refused message abandons its
    transaction (a commit after it is refused too), and the version in force never
    changes; a well-formed transaction then commits."""
    with Env("w") as env:
        env.gldp(ports=[("n1", "net_null0,no-rx=1"), ("n2", "net_null1,no-rx=1")])
        s = conn(env)
        begin = lambda gen, rec=0, flags=0, base=0: msg(  # noqa
            T_FW_BEGIN, struct.pack("<QIIQ", gen, rec, flags, base))
        commit = lambda gen: msg(T_FW_COMMIT, struct.pack("<Q", gen))  # noqa
        one_prefix = struct.pack("<II", 1, 0) + fw_prefix([10, 0, 0, 1], 10)
        # Out of order: no transaction open.
        for t, payload in ((T_FW_IPCACHE, one_prefix), (T_FW_PORT, fw_port(1)),
                           (T_FW_HOSTS, struct.pack("<II", 1, 0) + bytes(20)),
                           (T_FW_QUARANTINE, struct.pack("<II", 1, 0) + b"vm1".ljust(32, b"\0")),
                           (T_FW_COMMIT, struct.pack("<Q", 1))):
            expect_error(s, msg(t, payload), EPROTO, "outside a firewall transaction")
        # A malformed begin.
        expect_error(s, begin(0), EINVAL, "generation 0")
        expect_error(s, begin(1, rec=8), EINVAL, "unknown record flags")
        expect_error(s, msg(T_FW_BEGIN, struct.pack("<QI", 1, 0)), EINVAL, "record flags only")
        expect_error(s, begin(1, flags=4), EINVAL, "unknown flags 4")
        expect_error(s, begin(1, flags=2), EINVAL, "belong to a delta only")
        expect_error(s, begin(1, base=3), EINVAL, "belong to a delta only")
        expect_error(s, begin(2, flags=1, base=1), ESTALE, "no firewall is in force")

        def refused_in_transaction(t, payload, code, words):
            """In a fresh transaction: `payload` refused, and the transaction with it."""
            ok_reply(s, begin(5), "fw begin")
            expect_error(s, msg(t, payload), code, words)
            s.send(commit(5))
            err, text, _ = reply(s)
            check(err == EPROTO and "outside a firewall transaction" in text,
                  f"commit after a refused {t}: error {err} ({text})")

        cases = [
            (T_FW_IPCACHE, struct.pack("<II", 0, 0), EINVAL, "0 prefixes"),
            (T_FW_IPCACHE, struct.pack("<II", 3000, 0), EINVAL, "3000 prefixes"),
            (T_FW_IPCACHE, struct.pack("<II", 5, 0) + fw_prefix([10, 0, 0, 1], 10), EINVAL,
             "shorter than its count of 5"),
            (T_FW_IPCACHE, struct.pack("<II", 1, 0) + fw_prefix([10, 0, 0, 1], 10, family=5),
             EINVAL, "family 5"),
            (T_FW_IPCACHE, struct.pack("<II", 1, 0) + fw_prefix([10, 0, 0, 1], 1), EINVAL,
             "reserved"),
            (T_FW_IPCACHE, struct.pack("<II", 1, 0) + fw_prefix([10, 0, 0, 1], 10, length=33),
             EINVAL, "too long"),
            (T_FW_IPCACHE, one_prefix + b"\0" * 8, EINVAL, "trailing bytes"),
            (T_FW_HOSTS, struct.pack("<II", 2, 0) + bytes(20), EINVAL, "shorter than its count"),
            (T_FW_HOSTS, struct.pack("<II", 4000, 0), EINVAL, "4000 hosts"),
            (T_FW_HOSTS, struct.pack("<II", 1, 0) + bytes([9]) + bytes(19), EINVAL, "family 9"),
            (T_FW_HOSTS, struct.pack("<II", 1, 0) + bytes([4, 1]) + bytes(18), EINVAL, "padding"),
            (T_FW_QUARANTINE, struct.pack("<II", 1, 0) + b"x" * 32, EINVAL, "not terminated"),
            (T_FW_QUARANTINE, struct.pack("<II", 2000, 0), EINVAL, "2000 names"),
            (T_FW_PORT, fw_port(99), ENODEV, "no such port"),
            (T_FW_PORT, fw_port(1, defaults=(7, 0)), EINVAL, "unknown default action"),
            (T_FW_PORT, fw_port(1, n_ipv4=2000), EINVAL, "more than 1024"),
            (T_FW_PORT, fw_port(1, n_ipv4=3), EINVAL, "short address list"),
            (T_FW_PORT, fw_port(1, pad=b"\1" + b"\0" * 6), EINVAL, "padding"),
            (T_FW_PORT, fw_port(1, flags=2), EINVAL, "unknown flags"),
            (T_FW_PORT, fw_port(1, flags=1), EINVAL, "remove is for a delta"),
            (T_FW_PORT, fw_port(1)[:20], EINVAL, "short message"),
            (T_FW_RULES, struct.pack("<IB3xII", 1, 0, 1, 0) + bytes(16), EINVAL, "fw-port first"),
        ]
        for t, payload, code, words in cases:
            refused_in_transaction(t, payload, code, words)
        check(fw_status(s) == 0, "a refused transaction put a firewall in force")

        # Rules of a port sent in the transaction: a reversed range, a lying count.
        rules = lambda n, entries: msg(T_FW_RULES, struct.pack("<IB3xII", 1, 1, n, 0) + entries)  # noqa
        entry = lambda lo, hi, action=0: struct.pack("<IIHHBBBB", 0, 3, lo, hi, 17, action, 0, 0)  # noqa
        for payload, words in ((rules(1, entry(90, 80)), "reversed"),
                               (rules(3, entry(80, 90)), "shorter than its count of 3"),
                               (rules(1, entry(80, 90, action=9)), "unknown action 9"),
                               (rules(5000, b""), "5000 entries")):
            ok_reply(s, begin(5), "fw begin")
            ok_reply(s, msg(T_FW_PORT, fw_port(1)), "fw port")
            expect_error(s, payload, EINVAL, words)
            s.send(commit(5))
            err, text, _ = reply(s)
            check(err == EPROTO, f"commit after refused rules: error {err} ({text})")
        # A port twice; a commit of another generation; a prefix naming a host not given.
        ok_reply(s, begin(5), "fw begin")
        ok_reply(s, msg(T_FW_PORT, fw_port(1)), "fw port")
        expect_error(s, msg(T_FW_PORT, fw_port(1)), EINVAL, "sent twice")
        ok_reply(s, begin(5), "fw begin")
        expect_error(s, commit(6), EINVAL, "but the transaction began 5")
        ok_reply(s, begin(5), "fw begin")
        ok_reply(s, msg(T_FW_IPCACHE, struct.pack("<II", 1, 0) +
                        fw_prefix([10, 0, 0, 1], 10, host=3)), "fw ipcache")
        expect_error(s, commit(5), EINVAL, "host 3 but 0 hosts given")
        check(fw_status(s) == 0, "a refused transaction put a firewall in force")

        # A well-formed version commits; the same generation again is refused.
        ok_reply(s, begin(7), "fw begin")
        ok_reply(s, msg(T_FW_IPCACHE, one_prefix), "fw ipcache")
        ok_reply(s, msg(T_FW_PORT, fw_port(1)), "fw port")
        ok_reply(s, rules(1, entry(80, 90)), "fw rules")
        ok_reply(s, commit(7), "fw commit")
        check(fw_status(s) == 7, f"generation in force {fw_status(s)}, want 7")
        ok_reply(s, begin(7), "fw begin")
        expect_error(s, commit(7), EINVAL, "not above the one in force (7)")
        check(fw_status(s) == 7, "the refused commit changed the version in force")

        # Deltas of version 7: on another base, an ipcache without the new-ipcache flag, a
        # removed port that carries more than its number or has no firewall: refused.
        expect_error(s, begin(8, flags=1, base=6), ESTALE, "but version 7 is in force")
        ok_reply(s, begin(8, flags=1, base=7), "fw begin (delta)")
        expect_error(s, msg(T_FW_IPCACHE, one_prefix), EINVAL, "keeps the ipcache")
        ok_reply(s, begin(8, flags=1, base=7), "fw begin (delta)")
        expect_error(s, msg(T_FW_PORT, fw_port(1, flags=1)), EINVAL, "nothing but its number")
        ok_reply(s, begin(8, flags=1, base=7), "fw begin (delta)")
        expect_error(s, msg(T_FW_PORT, fw_port(1, identity=0, defaults=(1, 0), flags=1)), EINVAL,
                     "nothing but its number")
        ok_reply(s, begin(8, flags=1, base=7), "fw begin (delta)")
        ok_reply(s, msg(T_FW_PORT, fw_port(2, identity=0, flags=1)), "fw port (remove)")
        expect_error(s, commit(8), EINVAL, "port 2 is removed but has no firewall in version 7")
        # A delta adding port 2 commits; a second one removes port 1.
        ok_reply(s, begin(8, flags=1, base=7), "fw begin (delta)")
        ok_reply(s, msg(T_FW_PORT, fw_port(2)), "fw port")
        ok_reply(s, commit(8), "fw commit (delta)")
        st = ok_reply(s, msg(T_FW_STATUS), "fw status")
        check(struct.unpack_from("<QII", st) == (8, 2, 1), f"after the delta: {st.hex()}")
        ok_reply(s, begin(9, flags=1, base=8), "fw begin (delta)")
        ok_reply(s, msg(T_FW_PORT, fw_port(1, identity=0, flags=1)), "fw port (remove)")
        ok_reply(s, commit(9), "fw commit (delta)")
        st = ok_reply(s, msg(T_FW_STATUS), "fw status")
        check(struct.unpack_from("<QII", st) == (9, 1, 1), f"after the second delta: {st.hex()}")
        check(env.gldp_proc.poll() is None, "gldp died")


NOBODY_CLIENT = """
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit(0)
try:  # gldp closes it at once: the send may already find it closed
    s.send(bytes.fromhex(sys.argv[2]))
    data = s.recv(70000)
    print("EOF" if not data else "REPLY")
except (ConnectionResetError, BrokenPipeError):
    print("EOF")
"""


def test_socket_permissions():
    """Only root programs the datapath: the socket is 0600, and a non-root peer that gets
    through anyway (the mode loosened) is refused by its credentials (SO_PEERCRED)."""
    with Env("p") as env:
        env.gldp(ports=[("n1", "net_null0")])
        mode = os.stat(env.sock).st_mode & 0o777
        check(mode == 0o600, f"socket mode {oct(mode)}, want 0o600")
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  "/usr/bin/python3", "-c", NOBODY_CLIENT, env.sock, msg(T_INFO).hex()]
        r = run(nobody)
        check(r.stdout.strip() == "EACCES", f"nobody, socket 0600: {r.stdout!r} {r.stderr!r}")
        os.chmod(env.sock, 0o666)
        r = run(nobody)
        check(r.stdout.strip() == "EOF", f"nobody, socket 0666: {r.stdout!r} {r.stderr!r}")
        check("refused an API client" in env.log("gldp") and "uid 65534" in env.log("gldp"),
              f"gldp's log: {env.log('gldp')[-500:]}")
        ok_reply(conn(env), msg(T_INFO), "root after the refusal")


def test_client_never_reads():
    """A client that sends requests and never reads the replies: gldp's control thread does
    not wait for it (it used to block up to 10 s per reply once the socket filled), so other
    clients are served at once; the stalled client's replies wait for it, in order, and
    are all there when it reads."""
    import time
    with Env("r") as env:
        env.gldp(ports=[("n1", "net_null0,no-rx=1")])
        slow = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(env.sock)
        slow.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until gldp stops taking its requests
            try:
                slow.send(msg(T_INFO, xid=sent))
                sent += 1
            except BlockingIOError:
                time.sleep(0.2)
                try:
                    slow.send(msg(T_INFO, xid=sent))
                    sent += 1
                except BlockingIOError:
                    break
        check(sent > 100, f"only {sent} requests went out")
        print(f"  {sent} requests sent, {time.monotonic() - deadline + 10:.1f} s", flush=True)
        # Another client is served promptly meanwhile, again and again.
        fast = conn(env)
        t0 = time.monotonic()
        for i in range(20):
            ok_reply(fast, msg(T_INFO, xid=1000 + i), "info while another client stalls")
        took = time.monotonic() - t0
        check(took < 2.0, f"20 requests of another client took {took:.1f} s")
        # The stalled client reads: every reply it asked for, in order.
        slow.setblocking(True)
        slow.settimeout(5)
        got = 0
        while got < sent:
            data = slow.recv(70000)
            xid = HDR.unpack_from(data)[4]
            check(xid == got, f"reply {got} of the stalled client has xid {xid}")
            got += 1
        check(env.gldp_proc.poll() is None, "gldp died")


def test_client_over_backlog():
    """A client that asks for large replies (flow dumps of nearly 64 KiB) and never reads
    them: once the replies it left unread would pass gldp's limit (Server::kMaxBacklog,
    4 MiB), gldp does not send that reply and closes the client (it used to count only its
    own queue, which holds one reply at most, so it never did): the client reads every
    reply sent before, in order, then the end of the connection. Counted (drop
    api_closed_backlog) and logged; another client is served before and after, and gldp
    goes on."""
    import time
    T_FLOW_DUMP, limit = 13, 4 << 20
    with Env("b") as env:
        env.gldp(ports=[("n1", "net_null0,no-rx=1")])
        s = conn(env)
        # 200 flows, in_port=1,pkt_mark=N actions=output:1: a dump page holds 151 of them.
        out1 = struct.pack("<HHI", 8, 1, 1)
        for first in (0, 100):
            entries = b""
            for i in range(first, first + 100):
                e = bytearray(flow_put_entry(out1, ufid=(i + 1, 0xB0)))
                struct.pack_into("<I", e, 24 + 12, i)  # key.pkt_mark
                struct.pack_into("<I", e, 24 + KEY_SIZE + 12, 0xFFFFFFFF)  # its mask
                entries += bytes(e)
            data = ok_reply(s, msg(T_FLOW_PUT, struct.pack("<II", 100, 0) + entries), "flow put")
            errs = [struct.unpack_from("<i", data, 8 + i * 168)[0] for i in range(100)]
            check(errs == [0] * 100, f"flow put entry errors {set(errs)}")
        dump = msg(T_FLOW_DUMP, struct.pack("<QII", 0, 0, 0))
        page = len(ok_reply(s, dump, "flow dump")) + HDR.size
        check(page > 60000, f"a dump page is {page} bytes")
        other = conn(env)
        ok_reply(other, msg(T_INFO), "info before")

        # The hog: asks for three times the limit of dumps and reads none of them.
        hog = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        hog.connect(env.sock)
        hog.setblocking(False)
        sent, gone, deadline = 0, None, time.monotonic() + 10
        while sent < 3 * limit // page and gone is None and time.monotonic() < deadline:
            try:
                hog.send(msg(T_FLOW_DUMP, struct.pack("<QII", 0, 0, 0), xid=sent))
                sent += 1
            except BlockingIOError:  # gldp is not reading it (any more)
                time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError) as e:
                gone = e
        print(f"  {sent} dumps of {page} bytes asked for"
              f"{f', then {type(gone).__name__}' if gone else ''}", flush=True)
        check(sent > limit // page, f"only {sent} requests went out")
        # gldp works through the requests (a dump takes a while): wait for the close.
        deadline = time.monotonic() + 20
        while (closes := env.drops().get("api_closed_backlog")) != 1 and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        check(closes == 1, f"api_closed_backlog {closes} after 20 s, want 1")

        # It reads: the replies gldp sent, in order, then the end of the connection (the
        # kernel may report ECONNRESET first: gldp closed it with requests unread).
        hog.setblocking(True)
        hog.settimeout(5)
        got, reset, eof = 0, False, False
        try:
            while not eof:
                try:
                    data = hog.recv(70000)
                except ConnectionResetError:
                    reset = True
                    continue
                if not data:
                    eof = True
                    break
                _, _, mtype, _, xid, err, flags, _ = HDR.unpack_from(data)
                check(mtype == T_FLOW_DUMP and err == 0 and flags & 1 and len(data) == page,
                      f"reply {got}: type {mtype} error {err} {len(data)} bytes")
                check(xid == got, f"reply {got} has xid {xid}")
                got += 1
        except socket.timeout:
            check(False, f"gldp did not close the client: it read {got} replies "
                         f"({got * page} bytes) of {sent}, then nothing for 5 s")
        print(f"  {got} replies ({got * page} bytes) read, then the end"
              f"{' (after ECONNRESET)' if reset else ''}", flush=True)
        # Exactly as many as fit under the limit: the one that would pass it was not sent.
        check(got == limit // page, f"{got} replies of {page} bytes before the close, "
                                    f"want {limit // page}")
        hog.close()

        log = env.log("gldp")
        check(f"closing a client (pid {os.getpid()}) that left over {limit} bytes of replies "
              "unread" in log, f"gldp's log: {log[-500:]}")
        # The other client, and a new one, are served as before; gldp goes on.
        ok_reply(other, msg(T_INFO), "info after")
        check(len(ok_reply(other, dump, "flow dump after")) + HDR.size == page, "dump page")
        ok_reply(conn(env), msg(T_INFO), "a new client after")
        check(env.gldp_proc.poll() is None, "gldp died")


# ---- connection tracking ----------------------------------------------------------------
T_EXECUTE = 20
T_CT_DUMP, T_CT_FLUSH, T_CT_GET_CONFIG, T_CT_SET_MAXCONNS, T_CT_SET_SEQ = 70, 71, 72, 73, 74
T_CT_SET_LIMITS, T_CT_DEL_LIMITS, T_CT_GET_LIMITS, T_CT_STATS = 75, 76, 77, 78
ENOENT = 2
CT_ENTRY = 160


def ct_tuple(src=b"\x0a\0\0\x01", dst=b"\x0a\0\0\x02", sport=0, dport=0, icmp_id=0,
             icmp_type=0, icmp_code=0, family=4, proto=17, pad=b"\0" * 6):
    """A CtTuple (48 bytes); ports and the ICMP id are given in host order."""
    return (src.ljust(16, b"\0") + dst.ljust(16, b"\0") +
            struct.pack(">HHH", sport, dport, icmp_id) +
            struct.pack("<BBBB", icmp_type, icmp_code, family, proto) + pad)


def ct_flush_msg(flags=0, zone=0, tuple_=None):
    return msg(T_CT_FLUSH, struct.pack("<II", flags, zone) + (tuple_ or b"\0" * 48))


def ok_reply(s, raw, what):
    s.send(raw)
    err, text, data = reply(s)
    check(err == 0, f"{what}: error {err} ({text})")
    return data[HDR.size:]


def ct_action_output(zone, port):
    """ct(commit,zone=Z),PORT in the OVS datapath netlink encoding."""
    inner = struct.pack("<HH", 4, 1) + struct.pack("<HHH", 6, 2, zone) + b"\0\0"
    return struct.pack("<HH", 4 + len(inner), 12) + inner + struct.pack("<HHI", 8, 1, port)


def execute(s, frame, actions, in_port=1):
    md = bytearray(KEY_SIZE)
    struct.pack_into("<I", md, 0, in_port)
    pad_a = b"\0" * ((-len(actions)) % 8)
    pad_p = b"\0" * ((-len(frame)) % 8)
    ok_reply(s, msg(T_EXECUTE, bytes(md) + struct.pack("<II", len(frame), len(actions)) +
                    actions + pad_a + frame + pad_p), "execute")


def ct_dump_all(s, zone=None):
    """Every CtEntry (raw 160 bytes) of a paged dump."""
    entries, cursor = [], 0
    while True:
        flags, z = (1, zone) if zone is not None else (0, 0)
        data = ok_reply(s, msg(T_CT_DUMP, struct.pack("<QIIII", cursor, flags, z, 2, 0)), "dump")
        cursor, n = struct.unpack_from("<QI", data, 0)
        check(len(data) == 16 + n * CT_ENTRY, f"dump page of {n} entries is {len(data)} bytes")
        entries += [data[16 + i * CT_ENTRY:16 + (i + 1) * CT_ENTRY] for i in range(n)]
        if cursor == 0:
            return entries


def test_ct_messages():
    """Every conntrack message, well formed (connections made by executing ct(commit) on
    scapy-built packets, their entries decoded byte by byte) and malformed."""
    from scapy.all import ICMP, IP, UDP, Ether  # noqa: E402 - slow import, only here
    with Env("t") as env:
        env.gldp(ports=[("n1", "net_null0,no-rx=1"), ("n2", "net_null1,no-rx=1")])
        s = conn(env)
        info = ok_reply(s, msg(T_INFO), "info")
        features, = struct.unpack_from("<Q", info, 56)
        check(features & (1 << 7), f"info features 0x{features:x} lack conntrack (bit 7)")

        # Connections: UDP 10.0.0.1:1000 -> 10.0.0.2:2000 and a ping, committed in zone 5.
        eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        udp = bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000) /
                    (b"x" * 20))
        ping = bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(id=0x1234, seq=1))
        execute(s, udp, ct_action_output(5, 2))
        execute(s, udp, ct_action_output(5, 2))
        execute(s, ping, ct_action_output(5, 2))
        cfg = ok_reply(s, msg(T_CT_GET_CONFIG), "get config")
        n_conns, max_conns, capacity, dflt, seq = struct.unpack_from("<IIIIB", cfg)
        check(len(cfg) == 24 and n_conns == 2 and max_conns == capacity and capacity > 0 and
              dflt == 0 and seq == 1, f"config {n_conns} {max_conns} {capacity} {dflt} {seq}")

        entries = ct_dump_all(s)  # two pages of at most 2 entries (max_entries = 2)
        check(len(entries) == 2, f"{len(entries)} entries")
        by_proto = {e[41]: e for e in entries}
        u, i = by_proto.get(17), by_proto.get(1)
        check(u is not None and i is not None, "a UDP and an ICMP entry")
        check(u[0:48] == ct_tuple(sport=1000, dport=2000), f"UDP orig tuple {u[0:48].hex()}")
        check(u[48:96] == ct_tuple(src=b"\x0a\0\0\x02", dst=b"\x0a\0\0\x01", sport=2000,
                                   dport=1000), f"UDP reply tuple {u[48:96].hex()}")
        packets = struct.unpack_from("<QQ", u, 96)
        byts = struct.unpack_from("<QQ", u, 112)
        mark, timeout, zone, st_o, st_r, flags = struct.unpack_from("<IIHBBB", u, 144)
        check(packets == (2, 0) and byts == (2 * 48, 0), f"UDP counters {packets} {byts}")
        check(u[128:144] == b"\0" * 16 and mark == 0 and zone == 5 and 50 <= timeout <= 60 and
              st_o == st_r == 0 and flags == 0,
              f"UDP entry: mark {mark} timeout {timeout} zone {zone} states {st_o}/{st_r} "
              f"flags {flags}")
        check(i[0:48] == ct_tuple(icmp_id=0x1234, icmp_type=8, proto=1),
              f"ICMP orig {i[:48].hex()}")
        check(i[48:96] == ct_tuple(src=b"\x0a\0\0\x02", dst=b"\x0a\0\0\x01", icmp_id=0x1234,
                                   icmp_type=0, proto=1), f"ICMP reply {i[48:96].hex()}")
        # The remaining timeout (bytes 148..151) may tick down between the two dumps.
        def untimed(es):
            return sorted(e[:148] + e[152:] for e in es)
        check(untimed(ct_dump_all(s, zone=5)) == untimed(entries), "zone 5 dump")
        check(ct_dump_all(s, zone=6) == [], "zone 6 dump is empty")

        # Dump requests.
        expect_error(s, msg(T_CT_DUMP, b"\0" * 8), EINVAL, "too short")
        expect_error(s, msg(T_CT_DUMP, struct.pack("<QIIII", 0, 2, 0, 0, 0)), EINVAL,
                     "unknown ct dump flags 0x2")
        expect_error(s, msg(T_CT_DUMP, struct.pack("<QIIII", 0, 1, 70000, 0, 0)), EINVAL,
                     "zone 70000: zone must be 0..65535")
        expect_error(s, msg(T_CT_DUMP, struct.pack("<QIIII", 0, 0, 5, 0, 0)), EINVAL,
                     "without the zone flag")
        expect_error(s, msg(T_CT_DUMP, struct.pack("<QIIII", 1 << 33, 0, 0, 0, 0)), EINVAL,
                     "not one gldp returned")
        expect_error(s, msg(T_CT_DUMP, struct.pack("<QIIII", 0, 0, 0, 0, 0) + b"\0" * 8), EINVAL,
                     "unexpected bytes")

        # Flush requests.
        good = ct_tuple(sport=1000, dport=2000)
        expect_error(s, msg(T_CT_FLUSH, b"\0" * 20), EINVAL, "too short")
        expect_error(s, ct_flush_msg(flags=4), EINVAL, "unknown ct flush flags 0x4")
        expect_error(s, ct_flush_msg(flags=1, zone=70000), EINVAL,
                     "zone 70000: zone must be 0..65535")
        expect_error(s, ct_flush_msg(zone=5), EINVAL, "without the zone flag")
        expect_error(s, ct_flush_msg(tuple_=good), EINVAL, "without the tuple flag")
        expect_error(s, ct_flush_msg(3, 5, ct_tuple(family=5)), EINVAL, "family 5")
        expect_error(s, ct_flush_msg(3, 5, ct_tuple(src=b"\x0a\0\0\x01\x01")), EINVAL,
                     "first 4 bytes")
        expect_error(s, ct_flush_msg(3, 5, ct_tuple(proto=1, sport=1)), EINVAL,
                     "sport and dport must be 0")
        expect_error(s, ct_flush_msg(3, 5, ct_tuple(proto=1, family=6)), EINVAL, "needs family 4")
        expect_error(s, ct_flush_msg(3, 5, ct_tuple(proto=17, icmp_type=8)), EINVAL,
                     "must leave them 0")
        expect_error(s, ct_flush_msg(3, 5, ct_tuple(proto=47, sport=1)), EINVAL, "without ports")
        expect_error(s, ct_flush_msg(3, 5, ct_tuple(pad=b"\1" + b"\0" * 5)), EINVAL, "padding")
        expect_error(s, ct_flush_msg(2, 0, good), ENOENT,
                     "no connection udp,src=10.0.0.1,dst=10.0.0.2,sport=1000,dport=2000 in zone 0")
        # The reply tuple names the connection too.
        rep = ok_reply(s, ct_flush_msg(3, 5, ct_tuple(src=b"\x0a\0\0\x02", dst=b"\x0a\0\0\x01",
                                                       sport=2000, dport=1000)),
                       "flush reply tuple")
        check(struct.unpack_from("<I", rep)[0] == 1, "flushed one by its reply tuple")
        rep = ok_reply(s, ct_flush_msg(3, 5, ct_tuple(icmp_id=0x1234, icmp_type=8, proto=1)),
                       "flush icmp")
        check(struct.unpack_from("<I", rep)[0] == 1 and ct_dump_all(s) == [], "ICMP flushed")
        execute(s, udp, ct_action_output(7, 2))
        rep = ok_reply(s, ct_flush_msg(1, 6), "flush zone 6")
        check(struct.unpack_from("<I", rep)[0] == 0 and len(ct_dump_all(s)) == 1, "zone 6 empty")
        rep = ok_reply(s, ct_flush_msg(), "flush all")
        check(struct.unpack_from("<I", rep)[0] == 1 and ct_dump_all(s) == [], "all flushed")
        # IPv6: 16-byte addresses, family 6.
        from scapy.all import IPv6  # noqa: E402
        a1, a2 = bytes.fromhex("fd00" + "00" * 13 + "01"), bytes.fromhex("fd00" + "00" * 13 + "02")
        execute(s, bytes(eth / IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1000, dport=2000) /
                         (b"x" * 20)), ct_action_output(5, 2))
        e6 = ct_dump_all(s)
        t6 = ct_tuple(src=a1, dst=a2, sport=1000, dport=2000, family=6)
        check(len(e6) == 1 and e6[0][0:48] == t6 and
              e6[0][48:96] == ct_tuple(src=a2, dst=a1, sport=2000, dport=1000, family=6),
              f"IPv6 entry {[e.hex() for e in e6]}")
        rep = ok_reply(s, ct_flush_msg(3, 5, t6), "flush IPv6 tuple")
        check(struct.unpack_from("<I", rep)[0] == 1 and ct_dump_all(s) == [], "IPv6 flushed")

        # Max connections and TCP sequence checking.
        expect_error(s, msg(T_CT_GET_CONFIG, b"\0" * 8), EINVAL, "unexpected bytes")
        expect_error(s, msg(T_CT_SET_MAXCONNS, b"\0" * 4), EINVAL, "too short")
        expect_error(s, msg(T_CT_SET_MAXCONNS, struct.pack("<II", capacity + 1, 0)), EINVAL,
                     f"maxconns {capacity + 1} is above the table's capacity {capacity}")
        expect_error(s, msg(T_CT_SET_MAXCONNS, struct.pack("<II", 5, 1)), EINVAL, "padding")
        ok_reply(s, msg(T_CT_SET_MAXCONNS, struct.pack("<II", 1, 0)), "maxconns 1")
        execute(s, udp, ct_action_output(5, 2))
        execute(s, ping, ct_action_output(5, 2))
        check(len(ct_dump_all(s)) == 1, "maxconns 1 holds")
        ok_reply(s, msg(T_CT_SET_MAXCONNS, struct.pack("<II", capacity, 0)), "maxconns back")
        expect_error(s, msg(T_CT_SET_SEQ, struct.pack("<B7x", 2)), EINVAL,
                     "enabled must be 0 or 1, not 2")
        expect_error(s, msg(T_CT_SET_SEQ, struct.pack("<B6xB", 0, 1)), EINVAL, "padding")
        ok_reply(s, msg(T_CT_SET_SEQ, struct.pack("<B7x", 0)), "seq check off")
        cfg = ok_reply(s, msg(T_CT_GET_CONFIG), "get config")
        check(cfg[16] == 0, "seq check reported off")
        ok_reply(s, msg(T_CT_SET_SEQ, struct.pack("<B7x", 1)), "seq check on")

        # Zone limits: a bad entry anywhere changes nothing.
        def zl(zone, limit, count=0, pad=0):
            return struct.pack("<IIII", zone, limit, count, pad)

        def set_limits(flags, dflt, entries, n=None):
            return msg(T_CT_SET_LIMITS, struct.pack("<IIII", flags, dflt,
                                                    len(entries) if n is None else n, 0) +
                       b"".join(entries))

        def zones_msg(t, zones, cursor=0, n=None):
            body = struct.pack("<" + "I" * len(zones), *zones)
            body += b"\0" * ((-len(body)) % 8)
            return msg(t, struct.pack("<II", len(zones) if n is None else n, cursor) + body)

        def get_limits(zones=(), cursor=0):
            d = ok_reply(s, zones_msg(T_CT_GET_LIMITS, list(zones), cursor), "get limits")
            dflt, n, nxt = struct.unpack_from("<III", d)
            check(len(d) == 16 + 16 * n, f"get limits reply of {n} is {len(d)} bytes")
            return dflt, [struct.unpack_from("<III", d, 16 + 16 * k) for k in range(n)], nxt

        expect_error(s, msg(T_CT_SET_LIMITS, b"\0" * 8), EINVAL, "too short")
        expect_error(s, set_limits(2, 0, []), EINVAL, "unknown ct set limits flags 0x2")
        expect_error(s, set_limits(0, 5, [zl(1, 1)]), EINVAL, "without the default flag")
        expect_error(s, set_limits(0, 0, []), EINVAL, "neither a default limit nor zones")
        expect_error(s, set_limits(0, 0, [zl(1, 1)], n=3), EINVAL, "shorter than its count of 3")
        expect_error(s, set_limits(0, 0, [], n=5000), EINVAL, "5000 zones")
        expect_error(s, set_limits(1, 9, [zl(3, 1), zl(70000, 1)]), EINVAL,
                     "zone limit for zone 70000: zone must be 0..65535")
        expect_error(s, set_limits(0, 0, [zl(3, 1, count=2)]), EINVAL, "count and padding")
        expect_error(s, set_limits(0, 0, [zl(3, 1)]) + b"\0" * 8, EINVAL, "length")
        check(get_limits() == (0, [], 0), f"a refused set changed something: {get_limits()}")
        ok_reply(s, set_limits(1, 9, [zl(3, 1), zl(5, 2)]), "set limits")
        check(get_limits() == (9, [(3, 1, 0), (5, 2, 1)], 0), f"limits {get_limits()}")
        check(get_limits([5, 8]) == (9, [(5, 2, 1), (8, 9, 0)], 0), "limits of 5 and 8")
        expect_error(s, zones_msg(T_CT_GET_LIMITS, [], cursor=70000), EINVAL,
                     "past the last zone")
        expect_error(s, zones_msg(T_CT_GET_LIMITS, [5], cursor=1), EINVAL, "a cursor is only")
        expect_error(s, zones_msg(T_CT_GET_LIMITS, [70000]), EINVAL,
                     "zone 70000: zone must be 0..65535")
        expect_error(s, zones_msg(T_CT_GET_LIMITS, [5], n=9), EINVAL, "shorter than its count")
        expect_error(s, zones_msg(T_CT_DEL_LIMITS, []), EINVAL, "0 zones (1..4000")
        expect_error(s, zones_msg(T_CT_DEL_LIMITS, [70000]), EINVAL, "zone 70000")
        expect_error(s, zones_msg(T_CT_DEL_LIMITS, [3], cursor=2), EINVAL, "a cursor is only")
        ok_reply(s, zones_msg(T_CT_DEL_LIMITS, [3, 5]), "del limits")
        check(get_limits() == (9, [], 0), f"after del: {get_limits()}")
        # More zones with a limit than one reply holds: the list comes in pages.
        ok_reply(s, set_limits(0, 0, [zl(z, 1) for z in range(100, 4100)]), "4000 limits")
        ok_reply(s, set_limits(0, 0, [zl(z, 1) for z in range(4100, 4200)]), "100 more")
        _, page1, nxt = get_limits()
        check(len(page1) == 4000 and page1[0][0] == 100 and nxt == 4100,
              f"page 1: {len(page1)} zones, next {nxt}")
        _, page2, nxt = get_limits(cursor=nxt)
        check(len(page2) == 100 and page2[-1][0] == 4199 and nxt == 0,
              f"page 2: {len(page2)} zones, next {nxt}")
        ok_reply(s, zones_msg(T_CT_DEL_LIMITS, list(range(100, 4100))), "del 4000")

        # Stats.
        expect_error(s, msg(T_CT_STATS, struct.pack("<II", 2, 0)), EINVAL,
                     "unknown ct stats flags 0x2")
        expect_error(s, msg(T_CT_STATS, struct.pack("<II", 0, 1)), EINVAL, "padding")
        expect_error(s, msg(T_CT_STATS), EINVAL, "too short")
        st = ok_reply(s, msg(T_CT_STATS, struct.pack("<II", 1, 0)), "stats and clear")
        pk, found, created, expired, lim_g, lim_z, full, nat = struct.unpack_from("<8Q", st)
        nc, mc, cap, pend, n_inv, n_protos = struct.unpack_from("<6I", st, 64)
        index_bytes, index_grows = struct.unpack_from("<QI", st, 88)
        names = [st[104 + 40 * k:104 + 40 * k + 32].split(b"\0")[0].decode() for k in range(n_inv)]
        protos = [struct.unpack_from("<II", st, 104 + 40 * n_inv + 8 * k) for k in range(n_protos)]
        check(len(st) == 104 + 40 * n_inv + 8 * n_protos, "stats reply length")
        check(0 < index_bytes <= 8 << 20 and index_grows == 0,
              f"the index starts at 8 MiB or less: {index_bytes} B, grown {index_grows}")
        check(pk == 7 and created == 5 and lim_g == 1 and nc == 1 and cap == capacity,
              f"stats: packets {pk} created {created} limit_global {lim_g} n_conns {nc}")
        check("tcp_window" in names and "l4_checksum" in names, f"invalid reasons {names}")
        check(protos == [(17, 1)], f"per protocol {protos}")
        st = ok_reply(s, msg(T_CT_STATS, struct.pack("<II", 0, 0)), "stats after clear")
        check(struct.unpack_from("<8Q", st) == (0,) * 8, "counters cleared")
        check(env.gldp_proc.poll() is None, "gldp died")


# ---- timeout policies and fragment reassembly ---------------------------------------------
T_TP_SET, T_TP_GET, T_TP_DEL, T_TP_DUMP = 79, 80, 81, 82
T_IPF_ENABLE, T_IPF_MIN_FRAG, T_IPF_MAX_NFRAGS, T_IPF_STATUS, T_IPF_DUMP = 83, 84, 85, 86, 87
TP_NAMES = ["tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait", "tcp_time_wait",
            "tcp_close", "udp_first", "udp_single", "udp_multiple", "icmp_first", "icmp_reply"]
TP_DEFAULTS = [30, 30, 86400, 900, 45, 30, 60, 60, 30, 60, 30]
TP_ALL = (1 << 11) - 1
TP_SIZE = 72
IPF_FAMILY = struct.Struct("<B3xI6Q")  # enabled, min_frag_size, accepted .. purged


def tp(tp_id, present=0, sec=None):
    """A CtTimeoutPolicy: id, present mask, 16 second slots."""
    slots = list(sec or []) + [0] * (16 - len(sec or []))
    return struct.pack("<II16I", tp_id, present, *slots)


def tp_classes(tp_id, **classes):
    sec = [0] * 16
    present = 0
    for name, v in classes.items():
        i = TP_NAMES.index(name)
        present |= 1 << i
        sec[i] = v
    return tp(tp_id, present, sec)


def tp_decode(b):
    tp_id, present = struct.unpack_from("<II", b)
    return tp_id, present, list(struct.unpack_from("<16I", b, 8))


def ct_action_timeout(zone, port, policy):
    """ct(commit,zone=Z,timeout="POLICY"),PORT in the netlink encoding."""
    name = policy.encode() + b"\0"
    inner = (struct.pack("<HH", 4, 1) + struct.pack("<HHH", 6, 2, zone) + b"\0\0" +
             struct.pack("<HH", 4 + len(name), 9) + name + b"\0" * ((-len(name)) % 4))
    return struct.pack("<HH", 4 + len(inner), 12) + inner + struct.pack("<HHI", 8, 1, port)


def ipf_status(s):
    d = ok_reply(s, msg(T_IPF_STATUS), "ipf status")
    v4 = IPF_FAMILY.unpack_from(d, 0)
    v6 = IPF_FAMILY.unpack_from(d, 56)
    nfrag, nfrag_max, nlists, timeout_ms, n_inv, n_pass = struct.unpack_from("<6I", d, 112)
    check(len(d) == 136 + 48 * (n_inv + n_pass), f"ipf status reply is {len(d)} bytes")
    counters = {}
    for k in range(n_inv + n_pass):
        off = 136 + 48 * k
        name = d[off:off + 32].split(b"\0")[0].decode()
        counters[("inv:" if k < n_inv else "pass:") + name] = struct.unpack_from("<QQ", d, off + 32)
    keys = ("enabled", "min_frag", "accepted", "completed", "expired", "too_small", "overlap",
            "purged")
    return {"v4": dict(zip(keys, v4)), "v6": dict(zip(keys, v6)), "nfrag": nfrag,
            "nfrag_max": nfrag_max, "nlists": nlists, "timeout_ms": timeout_ms,
            "counters": counters}


def ipf_dump_lines(s):
    lines, cursor = [], 0
    while True:
        d = ok_reply(s, msg(T_IPF_DUMP, struct.pack("<II", cursor, 0)), "ipf dump")
        n, cursor = struct.unpack_from("<II", d)
        off = 8
        for _ in range(n):
            end = d.index(b"\0", off)
            lines.append(d[off:end].decode())
            off += (end - off + 1 + 7) // 8 * 8
        check(off == len(d), f"ipf dump page: {len(d) - off} bytes after {n} lines")
        if cursor == 0:
            return lines


def test_tp_ipf_messages():
    """Timeout policy and fragment reassembly messages, well formed and malformed."""
    from scapy.all import IP, UDP, Ether, fragment  # noqa: E402 - slow import, only here
    with Env("f") as env:
        env.gldp(ports=[("n1", "net_null0,no-rx=1"), ("n2", "net_null1,no-rx=1")])
        s = conn(env)

        # Policy set: every field checked, nothing applied when refused.
        expect_error(s, msg(T_TP_SET, b"\0" * 8), EINVAL, "too short")
        expect_error(s, msg(T_TP_SET, tp(7) + b"\0" * 8), EINVAL, "unexpected bytes")
        expect_error(s, msg(T_TP_SET, tp(7, 1 << 11)), EINVAL,
                     "timeout policy 7: unknown classes in the present mask 0x800")
        expect_error(s, msg(T_TP_SET, tp(1024, 1, [5])), EINVAL,
                     "timeout policy 1024: id must be below 1024")
        expect_error(s, msg(T_TP_SET, tp(7, 1 << 6, [0] * 6 + [2, 9])), EINVAL,
                     "udp_single has 9 s but is not in the present mask")
        expect_error(s, msg(T_TP_SET, tp(7, 0, [0] * 12 + [1])), EINVAL,
                     "slot 12 has 1 s but is not in the present mask")
        expect_error(s, msg(T_TP_SET, tp_classes(7, udp_first=4000001)), EINVAL,
                     "udp_first 4000001 s is more than 4000000 s")
        expect_error(s, msg(T_TP_GET, struct.pack("<II", 7, 0)), ENOENT, "no timeout policy 7")
        ok_reply(s, msg(T_TP_SET, tp_classes(7, udp_first=2, icmp_reply=3)), "set policy 7")
        got = ok_reply(s, msg(T_TP_GET, struct.pack("<II", 7, 0)), "get policy 7")
        check(len(got) == TP_SIZE, f"get reply of {len(got)} bytes")
        want = TP_DEFAULTS[:]
        want[6], want[10] = 2, 3
        check(tp_decode(got) == (7, TP_ALL, want + [0] * 5), f"policy 7: {tp_decode(got)}")
        # A set replaces the policy as a whole: classes left out go back to the defaults.
        ok_reply(s, msg(T_TP_SET, tp_classes(7, udp_first=2)), "replace policy 7")
        want[10] = 30
        got = ok_reply(s, msg(T_TP_GET, struct.pack("<II", 7, 0)), "get policy 7")
        check(tp_decode(got) == (7, TP_ALL, want + [0] * 5), f"replaced policy 7: {tp_decode(got)}")
        expect_error(s, msg(T_TP_GET, struct.pack("<II", 7, 1)), EINVAL, "padding")
        expect_error(s, msg(T_TP_GET, struct.pack("<I", 7)), EINVAL, "too short")
        got = ok_reply(s, msg(T_TP_GET, struct.pack("<II", 0, 0)), "get the default policy")
        check(tp_decode(got) == (0, TP_ALL, TP_DEFAULTS + [0] * 5), f"policy 0: {tp_decode(got)}")

        # A connection committed with timeout="7" gets udp_first = 2 s; without it, 60 s.
        eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        udp = bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000) /
                    (b"x" * 20))
        execute(s, udp, ct_action_timeout(5, 2, "7"))
        udp2 = bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1001, dport=2000) /
                     (b"x" * 20))
        execute(s, udp2, ct_action_output(5, 2))
        timeouts = {struct.unpack_from(">H", e, 32)[0]: struct.unpack_from("<I", e, 148)[0]
                    for e in ct_dump_all(s)}
        check(timeouts.get(1000, 99) <= 2 and 50 <= timeouts.get(1001, 0) <= 60,
              f"connection timeouts by source port: {timeouts}")

        # Delete: the default policy stays; a missing policy is ENOENT.
        expect_error(s, msg(T_TP_DEL, struct.pack("<II", 0, 0)), EINVAL,
                     "the default timeout policy (0) cannot be deleted")
        expect_error(s, msg(T_TP_DEL, struct.pack("<II", 9, 0)), ENOENT, "no timeout policy 9")
        expect_error(s, msg(T_TP_DEL, struct.pack("<II", 7, 0) + b"\0" * 8), EINVAL,
                     "unexpected bytes")
        ok_reply(s, msg(T_TP_DEL, struct.pack("<II", 7, 0)), "del policy 7")
        expect_error(s, msg(T_TP_GET, struct.pack("<II", 7, 0)), ENOENT, "no timeout policy 7")

        # Dump: every policy in id order, in pages of at most 512.
        for i in range(1, 601):
            ok_reply(s, msg(T_TP_SET, tp_classes(i, udp_first=i)), f"set policy {i}")
        pages, ids, cursor = 0, [], 0
        while True:
            d = ok_reply(s, msg(T_TP_DUMP, struct.pack("<II", cursor, 0)), "dump policies")
            n, cursor = struct.unpack_from("<II", d)
            check(len(d) == 8 + TP_SIZE * n, f"dump page of {n} is {len(d)} bytes")
            for k in range(n):
                tid, present, sec = tp_decode(d[8 + TP_SIZE * k:])
                check(present == TP_ALL and sec[6] == (tid if tid else 60),
                      f"dumped policy {tid}: {present:#x} {sec}")
                ids.append(tid)
            pages += 1
            if cursor == 0:
                break
        check(ids == list(range(0, 601)) and pages == 2, f"dump: {len(ids)} ids in {pages} pages")
        expect_error(s, msg(T_TP_DUMP, struct.pack("<II", 1024, 0)), EINVAL,
                     "cursor 1024 is past the last policy id 1023")
        expect_error(s, msg(T_TP_DUMP, struct.pack("<II", 0, 3)), EINVAL, "padding")
        expect_error(s, msg(T_TP_DUMP), EINVAL, "too short")

        # Fragment reassembly settings.
        expect_error(s, msg(T_IPF_ENABLE, struct.pack("<BB6x", 5, 1)), EINVAL,
                     "ipf set enabled: family 5 (want 4 or 6)")
        expect_error(s, msg(T_IPF_ENABLE, struct.pack("<BB6x", 4, 2)), EINVAL,
                     "enabled must be 0 or 1, not 2")
        expect_error(s, msg(T_IPF_ENABLE, struct.pack("<BB5xB", 4, 1, 1)), EINVAL, "padding")
        expect_error(s, msg(T_IPF_ENABLE, struct.pack("<BB", 4, 1)), EINVAL, "too short")
        expect_error(s, msg(T_IPF_MIN_FRAG, struct.pack("<B3xI", 0, 1000)), EINVAL,
                     "ipf set min frag: family 0")
        expect_error(s, msg(T_IPF_MIN_FRAG, struct.pack("<B3xI", 4, 399)), EINVAL, "399")
        expect_error(s, msg(T_IPF_MIN_FRAG, struct.pack("<BBxxI", 6, 1, 1000)), EINVAL, "padding")
        expect_error(s, msg(T_IPF_MAX_NFRAGS, struct.pack("<II", 5001, 0)), EINVAL, "5001")
        expect_error(s, msg(T_IPF_MAX_NFRAGS, struct.pack("<II", 500, 1)), EINVAL, "padding")
        expect_error(s, msg(T_IPF_STATUS, b"\0" * 8), EINVAL, "unexpected bytes")
        st = ipf_status(s)
        check(st["v4"]["enabled"] == 1 and st["v6"]["enabled"] == 1 and
              st["v4"]["min_frag"] == 1200 and st["v6"]["min_frag"] == 1280 and
              st["nfrag_max"] == 1000 and st["nfrag"] == 0 and st["timeout_ms"] == 15000,
              f"refused settings changed something: {st}")
        check("inv:too_small" in st["counters"] and "pass:disabled" in st["counters"],
              f"counter names: {list(st['counters'])}")
        ok_reply(s, msg(T_IPF_ENABLE, struct.pack("<BB6x", 6, 0)), "disable v6")
        ok_reply(s, msg(T_IPF_MIN_FRAG, struct.pack("<B3xI", 4, 400)), "min frag v4 400")
        ok_reply(s, msg(T_IPF_MAX_NFRAGS, struct.pack("<II", 500, 0)), "max nfrags 500")
        st = ipf_status(s)
        check(st["v6"]["enabled"] == 0 and st["v4"]["enabled"] == 1 and
              st["v4"]["min_frag"] == 400 and st["nfrag_max"] == 500, f"settings: {st}")
        ok_reply(s, msg(T_IPF_ENABLE, struct.pack("<BB6x", 6, 1)), "enable v6")

        # Fragments through ct(): the first two of three are held and listed, the third
        # completes the datagram.
        big = eth / IP(src="10.0.0.1", dst="10.0.0.2", id=0x4242) / UDP(sport=3000, dport=4000) / (
            b"y" * 1500)
        frags = [bytes(f) for f in fragment(big, fragsize=600)]
        check(len(frags) == 3, f"{len(frags)} fragments")
        execute(s, frags[0], ct_action_output(9, 2))
        execute(s, frags[1], ct_action_output(9, 2))
        st = ipf_status(s)
        check(st["nfrag"] == 2 and st["nlists"] == 1 and st["v4"]["accepted"] == 2,
              f"two fragments held: {st}")
        lines = ipf_dump_lines(s)
        check(lines == ["(src=10.0.0.1,dst=10.0.0.2,recirc_id=0,ip_id=16962,dl_type=0x800,zone=9,"
                        "nw_proto=17,num_fragments=2,state=first frag)"], f"ipf dump: {lines}")
        expect_error(s, msg(T_IPF_DUMP, struct.pack("<II", 5001, 0)), EINVAL, "cursor 5001")
        expect_error(s, msg(T_IPF_DUMP, struct.pack("<II", 0, 1)), EINVAL, "padding")
        execute(s, frags[2], ct_action_output(9, 2))
        st = ipf_status(s)
        check(st["nfrag"] == 0 and st["v4"]["accepted"] == 3 and st["v4"]["completed"] == 3,
              f"datagram completed: {st}")
        check(ipf_dump_lines(s) == [], "no lists left")
        zone9 = [e for e in ct_dump_all(s, zone=9)]
        check(len(zone9) == 1 and struct.unpack_from(">HH", zone9[0], 32) == (3000, 4000),
              "the reassembled datagram was tracked")
        # A non-last fragment below min_frag is refused and counted.
        small = [bytes(f) for f in fragment(big, fragsize=256)]
        execute(s, small[0], ct_action_output(9, 2))
        st = ipf_status(s)
        check(st["v4"]["too_small"] == 1 and st["counters"]["inv:too_small"][0] == 1 and
              st["nfrag"] == 0, f"too small: {st}")
        check(env.gldp_proc.poll() is None, "gldp died")


if __name__ == "__main__":
    main([test_bad_messages, test_bad_sa_messages, test_ct_messages, test_tp_ipf_messages,
          test_fw_messages, test_socket_permissions, test_client_never_reads,
          test_client_over_backlog])
