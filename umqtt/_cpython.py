# umqtt._cpython: what umqtt.simple2 uses from MicroPython, for CPython.
# MIT license; see LICENSE. Imported only on CPython; devices never load it.
import socket as _socket
import ssl
from time import monotonic_ns


def const(x):
    return x


def ticks_ms():
    return monotonic_ns() // 1000000 & 0x3FFFFFFF


def ticks_add(t, d):
    return (t + d) & 0x3FFFFFFF


def ticks_diff(a, b):
    return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000


__all__ = ("const", "ticks_ms", "ticks_add", "ticks_diff", "socket")  # what simple2 takes
_AGAIN = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class _Sock:
    """A CPython socket (self.s, replaced by its SSL socket when TLS is set up) with
    MicroPython's non-blocking stream methods: read(n), readinto(buf, n) and
    write(buf, off, n) return None when they would block. An SSL socket's handshake is
    taken a step further by each of them until it is done. Everything else is the
    socket's."""

    handshaking = False

    def __init__(self, *args):
        self.s = _socket.socket(*args)

    def __getattr__(self, name):
        return getattr(self.s, name)

    def _shake(self):
        self.s.do_handshake()
        self.handshaking = False

    def read(self, n):
        try:
            if self.handshaking:
                self._shake()
            return self.s.recv(n)
        except _AGAIN:
            return None

    def readinto(self, b, n=0):
        try:
            if self.handshaking:
                self._shake()
            return self.s.recv_into(b, n)
        except _AGAIN:
            return None

    def write(self, b, o=0, n=-1):
        try:
            if self.handshaking:
                self._shake()
            return self.s.send(memoryview(b)[o : len(b) if n < 0 else o + n])
        except _AGAIN:
            return None


class socket:
    """The socket module as umqtt.simple2 uses it."""

    getaddrinfo = staticmethod(_socket.getaddrinfo)
    SOCK_STREAM = _socket.SOCK_STREAM
    socket = _Sock


def context(server_hostname=None, cert_reqs=2, cadata=None, cert=None, key=None, **_):
    """The legacy ssl=True + ssl_params on CPython: an SSLContext built from
    wrap_socket()'s arguments (cadata DER or PEM; cert and key as file paths)."""
    c = ssl.create_default_context(cadata=cadata)
    if not cert_reqs:
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
    if cert:
        c.load_cert_chain(cert, key)
    return c
