"""TLS to mosquitto's TLS listener (server auth) and mTLS listener (client certificate
required), on MicroPython and CPython. The certificates are made at test time (the
`certs` fixture): ca.der signed the server certificate (SAN localhost, 127.0.0.1) and
the client certificate; other.der is a CA that signed neither. MicroPython's mbedTLS
reads DER only; CPython's load_cert_chain() reads PEM files."""
import textwrap

import pytest

from faultproxy import SilentServer

TLS = """
import ssl
CERTS = env("MQTT_CERTS")
TLS_PORT = int(env("MQTT_TLS_PORT"))
MTLS_PORT = int(env("MQTT_MTLS_PORT"))
CA = read(CERTS + "/ca.der")
OTHER_CA = read(CERTS + "/other.der")


def context(ca=CA, client_cert=False):
    # a verifying SSLContext, made the way each interpreter makes one
    if MICROPYTHON:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED  # MicroPython's default is CERT_NONE
        ctx.load_verify_locations(cadata=ca)
        if client_cert:
            ctx.load_cert_chain(CERTS + "/client.der", CERTS + "/client.key.der")
    else:
        ctx = ssl.create_default_context(cadata=ca)
        if client_cert:
            ctx.load_cert_chain(CERTS + "/client.crt", CERTS + "/client.key")
    return ctx


def tls_client(cid, host="localhost", port=TLS_PORT, **kw):
    return MQTTClient(name(cid), host, port=port, **kw)


def round_trip(c):
    # connect, QoS 1 to itself and back, disconnect
    inbox, st = Inbox(), Status()
    c.set_callback(inbox)
    c.set_callback_status(st)
    eq(c.connect(), 0)
    t = c.client_id + "/tls"  # the client id is unique to this run
    sp = c.subscribe(t, 1)
    until(lambda: st.of(sp), [c], what="SUBACK over TLS")
    c.publish(t, b"qos 0 over tls")
    pid = c.publish(t, b"over tls", qos=1)
    until(lambda: len(inbox.msgs) == 2 and st.of(pid), [c], what="QoS 0 and 1 round trip over TLS")
    eq(sorted(inbox.payloads()), [b"over tls", b"qos 0 over tls"])
    eq(st.of(pid), [errno.SDELIVERED])
    c.disconnect()


def rejected(c, why):
    # connect() must fail with an error from TLS (not from MQTT), keeping no socket
    try:
        c.connect()
    except MQTTException as e:
        raise AssertionError("%s: an MQTT error instead of a TLS one: %r" % (why, e))
    except (OSError, ValueError) as e:
        print(why, "->", repr(e))
        eq(c.sock, None, why + ": a socket was kept")
        return e
    raise AssertionError("%s: connect() succeeded" % why)


def verify_error(e):
    # the error says the server's certificate failed verification
    s = repr(e)
    check(("CERTIFICATE_VERIFY_FAILED" in s) if not MICROPYTHON
          else ("CN" in s or "signed" in s or "verif" in s), "not a verification error:", s)
"""


def script(body, more=""):
    return TLS + more + textwrap.dedent(body)


def test_verified_with_sslcontext(run):
    run(script("""
    round_trip(tls_client("ctx-name", ssl=context()))
    round_trip(tls_client("ctx-ip", "127.0.0.1", ssl=context()))
    """))


def test_verified_with_legacy_ssl_params(run):
    run(script("""
    round_trip(tls_client("leg-name", ssl=True, ssl_params={"cadata": CA}))
    round_trip(tls_client("leg-ip", "127.0.0.1", ssl=True, ssl_params={"cadata": CA}))
    """))


def test_wrong_hostname_rejected(run):
    run(script("""
    c = tls_client("badname", "127.0.0.1", ssl=True,
                   ssl_params={"cadata": CA, "server_hostname": "wrong.example"})
    verify_error(rejected(c, "wrong hostname"))
    """))


def test_wrong_ca_rejected(run):
    run(script("""
    verify_error(rejected(tls_client("badca1", ssl=context(OTHER_CA)), "wrong CA, SSLContext"))
    verify_error(rejected(tls_client("badca2", ssl=True, ssl_params={"cadata": OTHER_CA}),
                          "wrong CA, ssl_params"))
    """))


def test_mutual_tls(run):
    run(script("""
    round_trip(tls_client("mtls-ctx", port=MTLS_PORT, ssl=context(client_cert=True)))
    if MICROPYTHON:  # wrap_socket() takes the DER certificate and key as bytes
        p = {"cadata": CA, "cert": read(CERTS + "/client.der"),
             "key": read(CERTS + "/client.key.der")}
    else:  # CPython's load_cert_chain() takes file paths
        p = {"cadata": CA, "cert": CERTS + "/client.crt", "key": CERTS + "/client.key"}
    round_trip(tls_client("mtls-leg", port=MTLS_PORT, ssl=True, ssl_params=p))
    """))


def test_mutual_tls_without_client_cert_fails(run):
    # the server refuses the handshake; with TLS 1.3 (CPython) the client learns it
    # only when it reads, so the error may also be the broker's close (ECONCLOSE)
    run(script("""
    for c in (tls_client("nocert1", port=MTLS_PORT, ssl=context()),
              tls_client("nocert2", port=MTLS_PORT, ssl=True, ssl_params={"cadata": CA})):
        try:
            c.connect()
            raise AssertionError("mTLS listener accepted a client without a certificate")
        except MQTTException as e:
            print("no client cert ->", repr(e))
            eq(e.args[0], errno.ECONCLOSE)
        except (OSError, ValueError) as e:
            print("no client cert ->", repr(e))
        eq(c.sock, None, "a socket was kept")
    """))


def test_insecure_when_asked(run):
    # cert_reqs=CERT_NONE and no CA: no verification at all, not even of the name
    run(script("""
    round_trip(tls_client("insecure", "127.0.0.1", ssl=True, ssl_params={"cert_reqs": 0}))
    round_trip(tls_client("insecure2", "127.0.0.1", ssl=True,
                          ssl_params={"cert_reqs": 0, "server_hostname": "wrong.example"}))
    """))


def test_not_insecure_unless_asked(run):
    # ssl=True without cert_reqs=0 did not ask for an unverified connection: the test
    # CA is in no trust store, so the server must not be accepted. MicroPython has no
    # trust store at all: it refuses before any socket (tests/test_dropin.py has more)
    run(script("""
    if MICROPYTHON:
        for kw in ({}, {"ssl_params": {"server_hostname": "wrong.example"}}):
            c = tls_client("noca", ssl=True, **kw)
            raises(errno.EARG, c.connect)
            eq(c.sock, None)
    else:
        rejected(tls_client("noca1", ssl=True), "ssl=True, no ssl_params")
        rejected(tls_client("noca2", ssl=True, ssl_params={"server_hostname": "wrong.example"}),
                 "ssl=True, no CA, wrong hostname")
    """))


def test_tls_handshake_stall_times_out(run):
    # TCP connects, the ClientHello is never answered: connect() gives up within
    # socket_timeout, for an SSLContext and for ssl_params alike
    silent = SilentServer()
    try:
        run(script("""
        for ssl_kw in ({"ssl": context()}, {"ssl": True, "ssl_params": {"cadata": CA}}):
            c = tls_client("stall", port=int(env("SILENT_PORT")), socket_timeout=1, **ssl_kw)
            t0 = ticks_ms()
            try:
                c.connect()
                raise AssertionError("connect() to a silent TLS server succeeded")
            except MQTTException as e:
                eq(e.args[0], errno.ECONTIMEOUT, repr(e))
                err = e
            except OSError as e:
                err = e
            ms = ticks_diff(ticks_ms(), t0)
            print("handshake stall ->", repr(err), "after", ms, "ms")
            check(ms <= 1000 + 700, "handshake stall ended after", ms, "ms, socket_timeout=1")
            eq(c.sock, None, "a socket was kept")
        """), env={"SILENT_PORT": str(silent.port)}, timeout=30)
    finally:
        silent.stop()


PEM = """
from umqtt.tls import der
CA_PEM = read(CERTS + "/ca.crt")
"""


def test_pem_converted_to_der(run):
    # MicroPython's mbedTLS reads DER only: umqtt.tls.der() converts PEM (bytes or str),
    # the legacy ssl_params path converts cadata, cert and key itself
    run(script(more=PEM, body="""
    eq(der(CA_PEM), CA)
    eq(der(CA_PEM.decode()), CA)
    eq(der(b"junk before\\r\\n" + CA_PEM.replace(b"\\n", b"\\r\\n")), CA)
    eq(der(read(CERTS + "/client.crt")), read(CERTS + "/client.der"))
    eq(der(CA), CA)  # DER as it is
    eq(der(None), None)
    round_trip(tls_client("pem-leg", ssl=True, ssl_params={"cadata": CA_PEM}))
    round_trip(tls_client("pem-str", "127.0.0.1", ssl=True, ssl_params={"cadata": CA_PEM.decode()}))
    round_trip(tls_client("pem-ctx", ssl=context(der(CA_PEM))))
    # a key from `openssl ecparam -genkey` starts with an EC PARAMETERS block
    params = b"-----BEGIN EC PARAMETERS-----\\nBggqhkjOPQMBBw==\\n-----END EC PARAMETERS-----\\n"
    eq(der(params + read(CERTS + "/client.key")), der(read(CERTS + "/client.key")))
    if not MICROPYTHON:  # a str cadata is PEM to CPython: every certificate of a bundle
        bundle = (read(CERTS + "/other.crt") + CA_PEM).decode()
        round_trip(tls_client("pem-bundle", ssl=True, ssl_params={"cadata": bundle}))
    if MICROPYTHON:  # client certificate and key in PEM, as bytes
        p = {"cadata": CA_PEM, "cert": read(CERTS + "/client.crt"), "key": read(CERTS + "/client.key")}
        round_trip(tls_client("pem-mtls", port=MTLS_PORT, ssl=True, ssl_params=p))
    """))


def test_pem_that_cannot_be_converted_is_refused(run):
    # an encrypted key or a PEM with nothing in it: EARG, a message that says to give
    # DER, and no socket kept
    run(script(more=PEM, body="""
    ENC = (b"-----BEGIN EC PRIVATE KEY-----\\nProc-Type: 4,ENCRYPTED\\n"
           b"DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\\n\\nAAAA\\n"
           b"-----END EC PRIVATE KEY-----\\n")
    EMPTY = "-----BEGIN CERTIFICATE-----\\n-----END CERTIFICATE-----\\n"
    for bad in (ENC, b"-----BEGIN ENCRYPTED PRIVATE KEY-----\\nAAAA\\n-----END ENCRYPTED PRIVATE KEY-----", EMPTY):
        e = raises(errno.EARG, der, bad)
        check("DER" in e.args[1], "the message does not say DER:", e.args)
    c = tls_client("pem-bad", ssl=True, ssl_params={"cadata": EMPTY.encode()})
    raises(errno.EARG, c.connect)
    eq(c.sock, None, "a socket was kept")
    """))
