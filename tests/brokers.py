"""Real brokers for the tests, each started on free 127.0.0.1 ports by the test itself:
mosquitto (plain, password + ACL, TLS and mutual-TLS listeners, persistence on) and an
in-process amqtt. Also the certificates, made with openssl at test time."""
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("nothing listens on port %d" % port)


def make_certs(d):
    """An EC P-256 CA, a server certificate for localhost and 127.0.0.1, a client
    certificate, and DER copies (MicroPython's mbedTLS reads DER only)."""
    os.makedirs(d, exist_ok=True)

    def sh(*cmd):
        subprocess.run(cmd, cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
       "-subj", "/CN=Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, ext in (
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"),
        ("client", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                   "extendedKeyUsage=clientAuth\n"),
    ):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        sh("openssl", "req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
           "-subj", "/CN=" + ("localhost" if name == "server" else "client1"))
        sh("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
           "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext")
    # a second CA that signed nothing here: "wrong CA"
    sh("openssl", "req", "-x509", *ec, "-keyout", "other.key", "-out", "other.crt", "-days", "2",
       "-subj", "/CN=Other CA")
    for n in ("ca", "client", "other"):
        sh("openssl", "x509", "-in", n + ".crt", "-outform", "DER", "-out", n + ".der")
    sh("openssl", "ec", "-in", "client.key", "-outform", "DER", "-out", "client.key.der")
    return d


class Mosquitto:
    """mosquitto with four listeners: plain anonymous, password + ACL, TLS, mutual TLS."""

    USERS = {"alice": "secret", "bob": "hunter2"}

    def __init__(self, d, certs, **conf):
        self.dir = d
        self.certs = certs
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        self.port, self.auth_port, self.tls_port, self.mtls_port = (free_port() for _ in range(4))
        pw = os.path.join(d, "pw")
        open(pw, "w").close()
        for u, p in self.USERS.items():
            subprocess.run(["mosquitto_passwd", "-b", pw, u, p], check=True, capture_output=True)
        with open(os.path.join(d, "acl"), "w") as f:
            f.write("user alice\ntopic readwrite test/#\ntopic read ro/#\n"
                    "user bob\ntopic readwrite bob/#\n")
        extra = "".join("%s %s\n" % kv for kv in conf.items())
        c = certs
        tls = "cafile %s/ca.crt\ncertfile %s/server.crt\nkeyfile %s/server.key\n" % (c, c, c)
        with open(os.path.join(d, "mosquitto.conf"), "w") as f:
            f.write(
                "per_listener_settings true\npersistence true\npersistence_location %s/data/\n"
                "autosave_interval 1\nlog_dest file %s/mosquitto.log\nlog_type all\n"
                "set_tcp_nodelay true\n%s%s"
                "listener %d 127.0.0.1\nallow_anonymous true\n"
                "listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nacl_file %s/acl\n"
                "listener %d 127.0.0.1\nallow_anonymous true\n%s"
                "listener %d 127.0.0.1\nallow_anonymous true\n%srequire_certificate true\n"
                "use_identity_as_username true\n"
                % (d, d, "user root\n" if os.geteuid() == 0 else "", extra, self.port,
                   self.auth_port, pw, d, self.tls_port, tls, self.mtls_port, tls)
            )
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["mosquitto", "-c", os.path.join(self.dir, "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for p in (self.port, self.auth_port, self.tls_port, self.mtls_port):
            try:
                wait_port(p)
            except RuntimeError:
                self.stop()
                raise RuntimeError("mosquitto did not start: %s" % self.proc.stderr.read())
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                self.proc.wait(10)
            self.proc.stderr.close()
        self.proc = None

    def log(self):
        with open(os.path.join(self.dir, "mosquitto.log"), errors="replace") as f:
            return f.read()


class Amqtt:
    """amqtt in this process, on its own event loop in a thread. By default anonymous
    logins are off because amqtt's anonymous sessions never persist (tests/README.rst):
    clients send any user name. plugins: amqtt's "plugins" configuration instead."""

    def __init__(self, plugins=None):
        from amqtt.broker import Broker  # noqa: F401  (fail early when missing)

        self.port = free_port()
        self.plugins = plugins or {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False}}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        from amqtt.broker import Broker

        asyncio.set_event_loop(self.loop)
        config = {"listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:%d" % self.port}},
                  "plugins": self.plugins}
        try:
            self.broker = Broker(config, loop=self.loop)
            self.loop.run_until_complete(self.broker.start())
        except Exception as e:  # reported by start()
            self.error = e
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()
        self.loop.close()

    def start(self):
        self.thread.start()
        if not self.ready.wait(10) or self.error:
            raise RuntimeError("amqtt failed: %r" % self.error)
        return self

    def stop(self):
        if self.error is None:
            asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def have(cmd):
    return shutil.which(cmd) is not None
