"""The brokers of the interop tier (test_interop.py), each started by the test on free
127.0.0.1 ports and stopped afterwards: mosquitto (apt), amqtt (PyPI, in this process),
aedes (npm, under node), RabbitMQ with rabbitmq_mqtt (apt) and ejabberd's mod_mqtt (apt).
How each is run is noted in tests/README.rst. tests/setup.sh installs them all; a
broker that is missing makes its tests fail (never skip) with what to install.

Each broker object has what conftest.Runner reads (port, certs, auth_port, tls_port,
mtls_port) and env(): what the scenario scripts (interopcase.py) need."""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from brokers import Amqtt, Mosquitto, free_port, wait_port

TESTS = os.path.dirname(os.path.abspath(__file__))
# where tests/setup.sh puts aedes (npm install --prefix); AEDES_DIR overrides
AEDES_DIR = os.environ.get("AEDES_DIR") or os.path.join(TESTS, ".aedes")
RABBITMQ_BIN = "/usr/lib/rabbitmq/bin"


class Missing(Exception):
    """The broker is not installed here: the message says what to install."""


def _sh(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _deb_version(pkg):
    r = _sh(["dpkg-query", "-W", "-f=${Version}", pkg])
    return r.stdout.strip() if r.returncode == 0 else None


def _stop_group(proc, timeout=10):
    """End a process this module started (in its own session) and its children."""
    if proc is None or proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            pass


class InteropBroker:
    name = "?"
    version = "?"
    certs = ""  # conftest.Runner reads these; the interop scenarios use no TLS
    tls_port = mtls_port = 0
    user = password = None  # what every scenario logs in with (None: anonymous)
    auth_user = auth_pass = None  # valid credentials on auth_port, for the auth scenario

    def __init__(self, d):
        self.dir = d
        self.port = self.auth_port = 0

    def env(self):
        e = {
            "MQTT_BROKER": self.name,
            "MQTT_PORT": str(self.port),
            "MQTT_AUTH_PORT": str(self.auth_port),
            "MQTT_AUTH_USER": self.auth_user or "",
            "MQTT_AUTH_PASS": self.auth_pass or "",
            "MQTT_USER": self.user or "",
            "MQTT_PASS": self.password or "",
        }
        return e

    def check_installed(self):
        pass

    def start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def log(self):
        return ""

    def _await(self, timeout):
        # listening on self.port within timeout s; else stopped, and its log in the error
        try:
            wait_port(self.port, timeout)
        except RuntimeError:
            self.stop()
            raise RuntimeError("%s did not start in %d s:\n%s" % (self.name, timeout, self.log()))
        return self


class IMosquitto(InteropBroker):
    """brokers.Mosquitto: scenarios on its anonymous listener, auth on its password one."""

    name = "mosquitto"
    auth_user, auth_pass = "alice", "secret"

    def __init__(self, d, certs):
        super().__init__(d)
        self.certs = certs

    def check_installed(self):
        if not shutil.which("mosquitto"):
            raise Missing("mosquitto is not installed: apt-get install mosquitto mosquitto-clients "
                          "(tests/setup.sh does it)")
        r = _sh(["mosquitto", "-h"])
        self.version = r.stdout.split("version", 1)[-1].split()[0] if "version" in r.stdout else "?"

    def start(self):
        self.m = Mosquitto(self.dir, self.certs).start()
        self.port, self.auth_port = self.m.port, self.m.auth_port
        return self

    def stop(self):
        self.m.stop()

    def log(self):
        return self.m.log()


class IAmqtt(InteropBroker):
    """amqtt in this process with FileAuthPlugin (argon2 hashes): passwords are checked,
    and sessions persist (with AnonymousAuthPlugin on they never do: tests/README.rst)."""

    name = "amqtt"
    user, password = "tester", "pw-tester"
    auth_user, auth_pass = user, password

    def __init__(self, d, anonymous=False):
        super().__init__(d)
        self.anonymous = anonymous
        if anonymous:
            self.user = self.password = self.auth_user = self.auth_pass = None

    def check_installed(self):
        try:
            import amqtt  # noqa: F401
            from importlib.metadata import version

            self.version = version("amqtt")
        except ImportError:
            raise Missing("amqtt is not installed in .venv: run tests/setup.sh "
                          "(pip install -r tests/requirements.txt)")

    def plugins(self):
        if self.anonymous:
            return {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        from pwdlib.hashers.argon2 import Argon2Hasher

        pw = os.path.join(self.dir, "passwd")
        with open(pw, "w") as f:
            f.write("%s:%s\n" % (self.user, Argon2Hasher().hash(self.password)))
        return {"amqtt.plugins.authentication.FileAuthPlugin": {"password_file": pw}}

    def start(self):
        self.amqtt = Amqtt(self.plugins()).start()
        self.port = self.auth_port = self.amqtt.port
        return self

    def stop(self):
        self.amqtt.stop()


class IAedes(InteropBroker):
    """aedes (npm) under node, with tests/aedes_server.mjs: every client logs in."""

    name = "aedes"
    user, password = "tester", "pw-tester"
    auth_user, auth_pass = user, password

    def check_installed(self):
        node = shutil.which("node")
        if not node:
            raise Missing("node is not installed (aedes needs node >= 20): apt-get install nodejs npm")
        v = _sh([node, "--version"]).stdout.strip()
        if int(v.lstrip("v").split(".")[0]) < 20:
            raise Missing("aedes 1.x needs node >= 20, this is node %s" % v)
        pj = os.path.join(AEDES_DIR, "node_modules", "aedes", "package.json")
        if not os.path.exists(pj):
            raise Missing("aedes is not installed in %s: run tests/setup.sh (npm install --prefix "
                          "tests/.aedes aedes@1.2.0)" % AEDES_DIR)
        with open(pj) as f:
            self.version = json.load(f)["version"]

    def start(self):
        self.port = self.auth_port = free_port()
        self.out = open(os.path.join(self.dir, "aedes.log"), "w")
        self.proc = subprocess.Popen(
            ["node", os.path.join(TESTS, "aedes_server.mjs"), str(self.port),
             "%s:%s" % (self.user, self.password)],
            env=dict(os.environ, AEDES_DIR=AEDES_DIR), stdout=self.out, stderr=subprocess.STDOUT,
            start_new_session=True)
        return self._await(15)

    def stop(self):
        _stop_group(self.proc)
        self.out.close()

    def log(self):
        with open(os.path.join(self.dir, "aedes.log"), errors="replace") as f:
            return f.read()


class IRabbitMQ(InteropBroker):
    """RabbitMQ with rabbitmq_mqtt, run as root through the package's own script, with
    every listener (MQTT, AMQP, distribution, epmd) on 127.0.0.1 and free ports.
    Anonymous MQTT is off: clients log in as guest (allowed from loopback only)."""

    name = "rabbitmq"
    user, password = "guest", "guest"
    auth_user, auth_pass = user, password

    def check_installed(self):
        v = _deb_version("rabbitmq-server")
        if not v or not os.access(os.path.join(RABBITMQ_BIN, "rabbitmq-server"), os.X_OK):
            raise Missing("rabbitmq-server is not installed: apt-get install rabbitmq-server "
                          "(tests/setup.sh does it)")
        if not glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbitmq_mqtt-*"):
            raise Missing("rabbitmq-server has no rabbitmq_mqtt plugin")
        self.version = v

    def start(self):
        d = self.dir
        self.port = self.auth_port = free_port()
        amqp, dist, self.epmd = free_port(), free_port(), free_port()
        self.node = "rmq%s@localhost" % uuid.uuid4().hex[:8]
        with open(os.path.join(d, "rabbitmq.conf"), "w") as f:
            f.write(
                "listeners.tcp.default = 127.0.0.1:%d\n"
                "mqtt.listeners.tcp.default = 127.0.0.1:%d\n"
                "mqtt.allow_anonymous = false\nmqtt.vhost = /\nmqtt.exchange = amq.topic\n"
                "distribution.listener.interface = 127.0.0.1\n"
                "distribution.listener.port_range.min = %d\n"
                "distribution.listener.port_range.max = %d\n"
                "log.console = true\nlog.console.level = warning\nlog.file = false\n"
                % (amqp, self.port, dist, dist))
        with open(os.path.join(d, "enabled_plugins"), "w") as f:
            f.write("[rabbitmq_mqtt].\n")
        os.makedirs(os.path.join(d, "home"), exist_ok=True)
        self.envs = dict(
            os.environ, HOME=os.path.join(d, "home"),
            RABBITMQ_CONFIG_FILE=os.path.join(d, "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(d, "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=os.path.join(d, "mnesia"), RABBITMQ_LOG_BASE=os.path.join(d, "log"),
            RABBITMQ_NODENAME=self.node, RABBITMQ_PID_FILE=os.path.join(d, "rabbit.pid"),
            ERL_EPMD_ADDRESS="127.0.0.1", ERL_EPMD_PORT=str(self.epmd))
        self.out = open(os.path.join(d, "rabbitmq.log"), "w")
        self.proc = subprocess.Popen([os.path.join(RABBITMQ_BIN, "rabbitmq-server")], env=self.envs,
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self._await(60)

    def stop(self):
        if self.proc.poll() is None:
            _sh([os.path.join(RABBITMQ_BIN, "rabbitmqctl"), "-n", self.node, "stop"],
                env=self.envs, timeout=30)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            _stop_group(self.proc)
        # the epmd daemon the node started outlives it
        _sh(["epmd", "-port", str(self.epmd), "-kill"], env=self.envs, timeout=10)
        self.out.close()

    def log(self):
        with open(os.path.join(self.dir, "rabbitmq.log"), errors="replace") as f:
            return f.read()


class IEjabberd(InteropBroker):
    """ejabberd's mod_mqtt, own config and spool, on 127.0.0.1; it runs as the ejabberd
    user, so its folder is outside pytest's root-only tmp and chowned. Anonymous MQTT is
    refused (tests/README.rst): clients log in as a user registered at start."""

    name = "ejabberd"
    user, password = "tester", "pw-tester"
    auth_user, auth_pass = user, password

    def check_installed(self):
        v = _deb_version("ejabberd")
        if not v or not shutil.which("ejabberdctl"):
            raise Missing("ejabberd is not installed: apt-get install --no-install-recommends "
                          "ejabberd (tests/setup.sh does it)")
        self.version = v

    def _ctl(self, *args, timeout=60):
        d = self.edir
        return _sh(["ejabberdctl", "--ctl-config", d + "/ejabberdctl.cfg", "--config",
                    d + "/ejabberd.yml", "--spool", d + "/spool", "--logs", d + "/logs"] + list(args),
                   env=self.envs, timeout=timeout)

    def start(self):
        import pwd

        self.edir = d = tempfile.mkdtemp(prefix="umqtt-ejabberd-")
        self.port = self.auth_port = free_port()
        self.epmd = free_port()
        with open(d + "/ejabberd.yml", "w") as f:
            f.write(
                "hosts: [localhost]\nloglevel: info\nauth_method: [internal]\n"
                "allow_multiple_connections: true\n"
                "listen:\n  - {port: %d, ip: \"127.0.0.1\", module: mod_mqtt, backlog: 1000}\n"
                "acl: {local: {user_regexp: \"\"}}\naccess_rules: {local: {allow: all}}\n"
                "modules:\n  mod_mqtt: {access_subscribe: {\"#\": all}, access_publish: {\"#\": all}}\n"
                % self.port)
        with open(d + "/ejabberdctl.cfg", "w") as f:
            f.write("ERL_EPMD_ADDRESS=127.0.0.1\nINET_DIST_INTERFACE=127.0.0.1\n"
                    "ERLANG_NODE=ejb%s@localhost\n" % uuid.uuid4().hex[:8])
        os.makedirs(d + "/spool")
        os.makedirs(d + "/logs")
        u = pwd.getpwnam("ejabberd")
        for root, dirs, files in os.walk(d):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(n, u.pw_uid, u.pw_gid)
        self.envs = dict(os.environ, ERL_EPMD_PORT=str(self.epmd))
        self.out = open(os.path.join(self.dir, "ejabberd.log"), "w")
        self.proc = subprocess.Popen(
            ["ejabberdctl", "--ctl-config", d + "/ejabberdctl.cfg", "--config", d + "/ejabberd.yml",
             "--spool", d + "/spool", "--logs", d + "/logs", "foreground"],
            env=self.envs, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_port(self.port, 60)
            r = self._ctl("register", self.user, "localhost", self.password)
            if r.returncode != 0:
                raise RuntimeError("ejabberdctl register failed: " + r.stdout)
        except Exception as e:
            self.stop()
            raise RuntimeError("ejabberd did not start: %s\n%s" % (e, self.log()))
        return self

    def stop(self):
        if self.proc.poll() is None:
            self._ctl("stop", timeout=30)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            _stop_group(self.proc)
        _sh(["epmd", "-port", str(self.epmd), "-kill"], env=self.envs, timeout=10)
        self.out.close()
        shutil.rmtree(self.edir, ignore_errors=True)

    def log(self):
        with open(os.path.join(self.dir, "ejabberd.log"), errors="replace") as f:
            return f.read()


def make(name, d, certs):
    os.makedirs(d, exist_ok=True)
    if name == "mosquitto":
        return IMosquitto(d, certs)
    return {"amqtt": IAmqtt, "aedes": IAedes, "rabbitmq": IRabbitMQ, "ejabberd": IEjabberd}[name](d)
