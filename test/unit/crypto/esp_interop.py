#!/usr/bin/python3
"""Independent ESP peer for test_crypto: decrypts our packets and encrypts its own with
scapy's SecurityAssociation (scapy.layers.ipsec), driven by a request file.

Request lines (hex without spaces; seq is the full 64-bit sequence number):
  sa <AES-GCM|CHACHA20-POLY1305> <keymat: key||salt> <spi> <esn 0|1> <tunnel|transport> <src> <dst>
  dec <seq> <ESP packet starting at the outer IP header>
  enc <seq> <inner / clear IP packet>
Answers, one line per dec/enc: "ok <hex>" or "err <message>".
Exit status 77 when scapy is not importable (the test then skips).
"""
import sys

try:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.ipsec import ESP, SecurityAssociation
except Exception as e:  # noqa: BLE001
    print("scapy unavailable: %s" % e, file=sys.stderr)
    sys.exit(77)


def ip_of(raw):
    return IPv6(raw) if raw[0] >> 4 == 6 else IP(raw)


def main():
    sa_args = None
    out = []
    with open(sys.argv[1]) as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            if words[0] == "sa":
                cipher, keymat, spi, esn, mode, src, dst = words[1:8]
                sa_args = dict(cipher=cipher, key=bytes.fromhex(keymat), spi=int(spi),
                               esn=esn == "1", mode=mode, src=src, dst=dst)
                continue
            seq = int(words[1])
            raw = bytes.fromhex(words[2])
            a = sa_args
            tunnel = None
            if a["mode"] == "tunnel":
                tunnel = IPv6(src=a["src"], dst=a["dst"]) if ":" in a["src"] else \
                    IP(src=a["src"], dst=a["dst"])
            sa = SecurityAssociation(ESP, spi=a["spi"], crypt_algo=a["cipher"],
                                     crypt_key=a["key"], tunnel_header=tunnel,
                                     esn_en=a["esn"], esn=seq >> 32)
            try:
                if words[0] == "dec":
                    pkt = sa.decrypt(ip_of(raw))
                    out.append("ok " + bytes(pkt).hex())
                else:
                    # scapy reads seq_num=0 as "not given": set the SA's counter instead.
                    sa.seq_num = seq & 0xffffffff
                    pkt = sa.encrypt(ip_of(raw), iv=seq.to_bytes(8, "big"))
                    out.append("ok " + bytes(pkt).hex())
            except Exception as e:  # noqa: BLE001
                out.append("err " + repr(e).replace("\n", " "))
    print("\n".join(out))


if __name__ == "__main__":
    main()
