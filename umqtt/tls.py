# umqtt.tls: TLS for umqtt.simple2, imported only when ssl is set: the checks made before
# any socket is opened, the wrapping of a connected socket (its handshake then advances
# with the reads and writes that follow, without waiting), and der(), which turns PEM
# into the DER that MicroPython's mbedTLS reads. MIT license; see LICENSE.
import sys
from binascii import a2b_base64
from . import MQTTException

_EARG = 51
_NO_CA = ("ssl=True verifies the broker's certificate, and this platform has no CA store:"
          " give ssl_params={'cadata': the CA certificate (DER or PEM)},"
          " or ssl_params={'cert_reqs': 0} for an unverified link")


def der(b):
    """PEM (str or bytes) -> the DER bytes of its first block (an EC PARAMETERS block
    skipped); anything else unchanged. Refuses (EARG) what it cannot turn into DER: an
    encrypted key, an empty block."""
    if isinstance(b, str):
        b = b.encode()
    i = b.find(b"-----BEGIN") if isinstance(b, bytes) else -1
    if i < 0:
        return b
    if b.startswith(b"-----BEGIN EC PARAMETERS", i):  # openssl ecparam -genkey
        i = b.find(b"-----BEGIN", i + 1)
    s = b""
    for ln in b[i:].split(b"\n")[1:]:
        ln = ln.strip()
        if ln.startswith(b"-----"):
            break
        s += ln
    if b"ENCRYPTED" not in b:
        try:
            d = a2b_base64(s)
            if d:
                return d
        except ValueError:
            pass
    raise MQTTException(_EARG, "PEM unusable here: give DER (openssl ... -outform DER)")


def check(c):
    """Refuses, before any socket is opened, what would fail deep in the handshake: the
    legacy ssl=True on MicroPython, which has no CA store, with no CA and verification
    on (MQTTException(EARG) naming the two fixes)."""
    if hasattr(c.ssl, "wrap_socket"):  # an SSLContext: its settings are its own
        return
    p = c.ssl_params or {}
    if sys.implementation.name == "micropython" and p.get("cert_reqs", 2) and not p.get("cadata"):
        raise MQTTException(_EARG, _NO_CA)


def wrap(c, s):
    """Client c's connected socket s in TLS, the handshake left to the reads and writes
    that follow. c.ssl an SSLContext: its wrap_socket(), with SNI. Else the legacy
    ssl=True + c.ssl_params, wrap_socket()'s arguments: SNI, the name verified,
    CERT_REQUIRED unless they say cert_reqs=0. PEM becomes DER: on MicroPython cadata,
    cert and key (bytes or str); on CPython cadata in bytes (a str is PEM to it already,
    all of a bundle; cert and key are file paths)."""
    cp = getattr(s, "s", None)  # CPython: the socket under umqtt._cpython's
    r = cp or s
    if hasattr(c.ssl, "wrap_socket"):
        r = c.ssl.wrap_socket(r, server_hostname=c.server, do_handshake_on_connect=False)
    else:
        p = {"server_hostname": c.server, "cert_reqs": 2}
        p.update(c.ssl_params or {})
        for k in ("cadata",) if cp else ("cadata", "cert", "key"):
            if k in p and not (cp and isinstance(p[k], str)):
                p[k] = der(p[k])
        if cp:  # (the context is built once: loading it takes CPython ~50 ms)
            ctx = getattr(c, "_tls_context", None)
            if ctx is None:
                from ._cpython import context

                ctx = c._tls_context = context(**p)
            r = ctx.wrap_socket(r, server_hostname=p["server_hostname"], do_handshake_on_connect=False)
        else:
            from ssl import wrap_socket  # MicroPython < 1.23 finds its ussl so too

            r = wrap_socket(r, do_handshake=False, **p)
    if cp:
        s.s = r
        s.handshaking = True
        return s
    return r
