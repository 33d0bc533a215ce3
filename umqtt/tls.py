# umqtt.tls: the legacy ssl=True + ssl_params path of umqtt.simple2, imported only
# when it is used, and der(), which turns PEM into the DER that MicroPython's mbedTLS
# reads. MIT license; see LICENSE.
from binascii import a2b_base64
from .simple2 import MQTTException, _ms, ticks_ms, ticks_diff


def der(b):
    # PEM (str or bytes) -> the DER bytes of its first block (an EC PARAMETERS block
    # skipped); anything else unchanged. Refuses (EARG, 51) what it cannot turn into
    # DER: an encrypted key, an empty block.
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
    raise MQTTException(51, "PEM unusable here: give DER (openssl ... -outform DER)")


def wrap(c, s, t):
    # client c's socket s in TLS, the handshake within what is left of c.socket_timeout
    # since ticks_ms() t. c.ssl an
    # SSLContext: its wrap_socket(), with SNI. Else the legacy ssl=True + c.ssl_params,
    # wrap_socket()'s arguments: SNI, the name verified, CERT_REQUIRED unless they say
    # cert_reqs=0. PEM becomes DER: on MicroPython cadata, cert and key (bytes or str);
    # on CPython cadata in bytes (a str is PEM to it already, all of a bundle; cert and
    # key are file paths)
    ms = _ms(c.socket_timeout)
    if ms >= 0:
        s.settimeout(max(1, ms - ticks_diff(ticks_ms(), t)) / 1000)
    cp = getattr(s, "s", None)  # CPython: the socket under umqtt._cpython's
    r = cp or s
    if hasattr(c.ssl, "wrap_socket"):
        r = c.ssl.wrap_socket(r, server_hostname=c.server)
    else:
        p = {"server_hostname": c.server, "cert_reqs": 2}
        p.update(c.ssl_params or {})
        for k in ("cadata",) if cp else ("cadata", "cert", "key"):
            if k in p and not (cp and isinstance(p[k], str)):
                p[k] = der(p[k])
        if cp:
            from ._cpython import wrap_socket
        else:
            from ssl import wrap_socket  # MicroPython < 1.23 finds its ussl so too
        r = wrap_socket(r, **p)
    if cp:
        s.s = r
        return s
    return r
