"""A small TFTP server (RFC 1350, read requests) with the interface of tftpy that Open
vSwitch's tests/test-l7.py expects, for OVS's TFTP system tests (tools/ovs-systest.py puts
this directory on PYTHONPATH). Debian 12 does not package tftpy.

test-l7.py does `from tftpy import TftpServer, TftpShared`, subclasses TftpServer with
`TftpServer.__init__(self, tftproot='./')`, and calls `self.listen(ip, port)` with
`TftpShared.DEF_TFTP_PORT`. Each read request is answered from a new UDP port (the
transfer ID of RFC 1350 section 4: what a conntrack TFTP helper has to expect), in
512-byte blocks, each sent until acknowledged (5 tries, 1 s apart). Options (RFC 2347)
are ignored, which a client must accept: it then uses the defaults. Write requests get
an error. Files are served from the root only (no path outside it).
"""

import os
import socket
import struct
import threading

__all__ = ["TftpServer", "TftpShared"]

_RRQ, _WRQ, _DATA, _ACK, _ERROR = 1, 2, 3, 4, 5
_BLOCK = 512
_TRIES = 5


class TftpShared:
    DEF_TFTP_PORT = 69


def _error(code, text):
    return struct.pack("!HH", _ERROR, code) + text.encode() + b"\0"


class TftpServer:
    def __init__(self, tftproot="/tftpboot", dyn_file_func=None, upload_open=None):
        self.root = os.path.realpath(tftproot)

    def listen(self, listenip="", listenport=TftpShared.DEF_TFTP_PORT, timeout=1):
        family = socket.AF_INET6 if ":" in listenip else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((listenip, listenport))
        while True:
            data, peer = sock.recvfrom(65536)
            threading.Thread(target=self._serve, args=(family, data, peer, timeout),
                             daemon=True).start()

    def _path(self, name):
        path = os.path.realpath(os.path.join(self.root, name.lstrip("/")))
        return path if path.startswith(self.root + os.sep) else None

    def _serve(self, family, data, peer, timeout):
        sock = socket.socket(family, socket.SOCK_DGRAM)  # a new transfer ID (port)
        sock.bind(("", 0))
        sock.settimeout(timeout)
        try:
            if len(data) < 4:
                return
            op = struct.unpack("!H", data[:2])[0]
            if op == _WRQ:
                sock.sendto(_error(2, "read only"), peer)
                return
            if op != _RRQ:
                sock.sendto(_error(4, "illegal operation"), peer)
                return
            fields = data[2:].split(b"\0")
            path = self._path(fields[0].decode(errors="replace"))
            if path is None or not os.path.isfile(path):
                sock.sendto(_error(1, "file not found"), peer)
                return
            with open(path, "rb") as f:
                content = f.read()
            block = 1
            while True:
                chunk = content[(block - 1) * _BLOCK:block * _BLOCK]
                packet = struct.pack("!HH", _DATA, block & 0xffff) + chunk
                if not self._send_acked(sock, packet, peer, block):
                    return
                if len(chunk) < _BLOCK:
                    return
                block += 1
        finally:
            sock.close()

    @staticmethod
    def _send_acked(sock, packet, peer, block):
        for _ in range(_TRIES):
            sock.sendto(packet, peer)
            try:
                while True:
                    reply, src = sock.recvfrom(65536)
                    if src[:2] != peer[:2] or len(reply) < 4:
                        continue  # another transfer's, or garbage: not ours
                    op, num = struct.unpack("!HH", reply[:4])
                    if op == _ERROR:
                        return False
                    if op == _ACK and num == block & 0xffff:
                        return True
            except socket.timeout:
                continue
        return False
