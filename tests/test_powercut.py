"""Power cuts lose nothing (issue #14): a "device" (tests/powercut_device.py: robust2 with
a FileStore, publishing numbered QoS 1 and QoS 2 readings) is killed with SIGKILL at
random moments, again and again, while mosquitto (persistence on) is restarted now and
then; an independent subscriber (mosquitto_sub, persistent session, QoS 2) counts what
arrives. On MicroPython and CPython.

The first half of the cuts run FileStore as it ships; the second half on "slow flash"
(each write goes out a few bytes at a time, the store's open() wrapped by the device)
with compaction made frequent, so that many cuts land inside a compaction or tear a
journal record. After the last cut the device runs once more until it has nothing left.

Checks: every reading the application recorded as handed to publish() arrives; a QoS 2
reading arrives once, except one the application handed to publish() again because the
cut came before it recorded it (counted apart); no reading that was never published; no
load() failure; the store is empty at the end. POWERCUT_SEED=n replays a schedule (the
timing of a cut is the OS's, so not exactly)."""
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from brokers import Mosquitto
from conftest import INTERPRETERS, REPO, TESTS, interpreter_cmd, script_env

sys.path.insert(0, REPO)
from umqtt import store as S  # noqa: E402  (this tree's, to read the device's journal)

CUTS = 48  # per interpreter; the second half on slow flash with frequent compaction
RESTART_EVERY = 5  # mosquitto restarted at every 5th cut, three ways in turn
RUN_MS = (50, 800)  # how long the device runs before its cut, from its load()
PLAIN = {}  # FileStore as it ships, on a file that writes at once
SLOW = {"PC_CHUNK": "8", "PC_CHUNK_MS": "1"}  # flash: 8 bytes a write, 1 ms between two
# on slow flash in turn: compacted as soon as the journal outgrows the live state (most
# cuts land in a compaction), or at 3 times (more cuts tear a record of the journal)
COMPACTING = dict(SLOW, PC_COMPACT_MIN="256", PC_COMPACT_RATIO="1")
TEARING = dict(SLOW, PC_COMPACT_MIN="256", PC_COMPACT_RATIO="3")


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out (%ss) waiting for %s" % (timeout, what))
        time.sleep(0.005)


def sleep_until(t):
    time.sleep(max(0, t - time.monotonic()))


def stamp(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class Device:
    """The device script, started afresh in directory d after each cut."""

    def __init__(self, interp, d, port, run_id):
        self.interp, self.dir, self.port, self.run = interp, d, port, run_id
        self.n = 0
        self.proc = self.log = None

    def start(self, extra, drain=False):
        self.n += 1
        self.log = os.path.join(self.dir, "device-%d.log" % self.n)
        e = {"MQTT_PORT": str(self.port), "MQTT_RUN": self.run, "PYTHONUNBUFFERED": "1"}
        e.update(extra)
        if drain:
            e["PC_DRAIN"] = "1"
        with open(self.log, "w") as f:
            self.proc = subprocess.Popen(interpreter_cmd(self.interp) + [os.path.join(TESTS, "powercut_device.py")],
                                         cwd=self.dir, env=script_env(self.interp, REPO, e), stdout=f,
                                         stderr=subprocess.STDOUT)
        return self

    def output(self):
        return text(self.log)

    def loaded(self):
        # what load() gave at this start; fails on a load() failure or an early exit
        out = self.output()
        if "LOAD FAILED" in out or "Traceback" in out:
            pytest.fail("%s device, start %d: load() failed:\n%s" % (self.interp, self.n, out))
        for line in out.splitlines():
            if line.startswith("LOAD "):
                return int(line.split()[1])
        if self.proc.poll() is not None:
            pytest.fail("%s device, start %d, exited (%s) before load():\n%s"
                        % (self.interp, self.n, self.proc.returncode, out))
        return None

    def cut(self):
        if self.proc.poll() is not None:  # it must have been running: nothing ends it but a cut
            pytest.fail("%s device, start %d, had ended by itself (exit %s):\n%s"
                        % (self.interp, self.n, self.proc.returncode, self.output()))
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


class Subscriber:
    """mosquitto_sub with a persistent QoS 2 session: it reconnects by itself after a
    broker restart, and the broker keeps what comes meanwhile."""

    def __init__(self, d, port, topic, cid):
        self.path = os.path.join(d, "sub.txt")
        self.topic = topic
        with open(self.path, "w") as f:
            self.proc = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-c", "-i", cid,
                                          "-q", "2", "-t", topic, "-F", "%q %p"], stdout=f,
                                         stderr=subprocess.STDOUT)
        # subscribed once a probe published after its start comes through
        end = time.monotonic() + 10
        while "probe" not in text(self.path):
            if time.monotonic() > end:
                raise AssertionError("mosquitto_sub never got its probe: " + text(self.path))
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic,
                            "-m", "probe"], check=True, timeout=10)
            wait_until = time.monotonic() + 0.5
            while "probe" not in text(self.path) and time.monotonic() < wait_until:
                time.sleep(0.01)

    def readings(self):
        """[(qos, number)] in arrival order; the probes left out."""
        got = []
        for line in text(self.path).splitlines():
            q, _, p = line.partition(" ")
            if p != "probe":
                got.append((int(q), int(p)))
        return got

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def journal(path):
    """(messages kept, clean): the device's journal as the controller reads it."""
    try:
        with open(path, "rb") as f:
            snap, clean, magic, end = S.parse(f)
    except FileNotFoundError:
        return 0, True
    return (len(snap[1]) if snap else 0), clean


@pytest.mark.parametrize("interp", INTERPRETERS)
def test_power_cuts_lose_nothing(interp, tmp_path, certs):
    seed = int(os.environ.get("POWERCUT_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    d = str(tmp_path)
    broker = Mosquitto(os.path.join(d, "mosquitto"), certs, max_queued_messages=0).start()
    run_id = "pc%d" % seed
    sub = dev = None
    stats = {"cuts": 0, "cuts on slow flash": 0, "in compaction": 0, "torn journal": 0,
             "compactions done": 0, "broker restarts": 0, "most kept at a cut": 0,
             "runs that published nothing": 0}
    allowed = set()  # readings the application may have handed to publish() twice
    try:
        sub = Subscriber(d, broker.port, "%s-pc/readings" % run_id, "%s-pc-sub" % run_id)
        dev = Device(interp, d, broker.port, run_id)
        broker_down = False
        last = -1
        jpath = os.path.join(d, "store.dat")
        tmp = jpath + ".tmp"
        for k in range(CUTS):
            slow = k >= CUTS // 2
            # a .tmp or a torn journal left by an earlier cut counts for that one only
            tmp_before, journal_before = stamp(tmp), stamp(jpath)
            dev.start(PLAIN if not slow else COMPACTING if k % 2 else TEARING)
            wait_for(lambda: dev.loaded() is not None, 20, "the device's load()")
            t0 = time.monotonic()
            cut_at = t0 + rng.uniform(*RUN_MS) / 1000
            way = (k // RESTART_EVERY) % 3 if k % RESTART_EVERY == RESTART_EVERY - 1 else None
            if broker_down:  # the previous cut came with the broker down: back now
                sleep_until(t0 + (cut_at - t0) * rng.random())
                broker.start()
                broker_down = False
            if way in (1, 2):
                sleep_until(t0 + (cut_at - t0) * rng.random())
                broker.stop()
                stats["broker restarts"] += 1
                if way == 1:  # the broker restarts while the device runs
                    time.sleep(rng.uniform(0.02, 0.2))
                    broker.start()
                else:  # the broker goes down; the device is cut, starts without it
                    broker_down = True
            sleep_until(cut_at)
            dev.cut()
            stats["cuts"] += 1
            stats["cuts on slow flash"] += slow
            out = dev.output()
            stats["compactions done"] += out.count("COMPACT end")
            if stamp(tmp) not in (None, tmp_before):
                stats["in compaction"] += 1  # cut between open(.tmp) and its rename
            kept, clean = journal(jpath)
            stats["torn journal"] += not clean and stamp(jpath) != journal_before
            stats["most kept at a cut"] = max(stats["most kept at a cut"], kept)
            before, last = last, int(text(os.path.join(d, "last")) or -1)
            stats["runs that published nothing"] += last == before
            allowed.add(last + 1)  # in publish() at the cut, perhaps: handed over again
            if way == 0:  # the broker restarts while the device is off
                broker.stop()
                broker.start()
                stats["broker restarts"] += 1
        if broker_down:
            broker.start()
        # the last start: until everything is acknowledged
        dev.start(PLAIN, drain=True)
        try:
            dev.proc.wait(90)
        except subprocess.TimeoutExpired:
            dev.proc.kill()
            pytest.fail("the draining device hung:\n" + dev.output())
        dev.loaded()
        assert dev.proc.returncode == 0 and "DRAINED" in dev.output(), dev.output()
        last = int(text(os.path.join(d, "last")))
        recorded = set(range(last + 1))  # each handed to publish() and recorded as such

        def arrived():
            return recorded <= {n for q, n in sub.readings()}

        try:
            wait_for(arrived, 30, "every recorded reading at the subscriber")
        except AssertionError:
            pass  # reported below, with what is missing
        # a late duplicate would come right behind: give it a moment, bounded
        n = -1
        end = time.monotonic() + 3
        while n != len(sub.readings()) and time.monotonic() < end:
            n = len(sub.readings())
            time.sleep(0.3)
        assert sub.proc.poll() is None, "mosquitto_sub ended: %s" % text(sub.path)[-2000:]
        sub.stop()
        got = sub.readings()
    finally:
        if dev and dev.proc and dev.proc.poll() is None:
            dev.proc.kill()
            dev.proc.wait(10)
        if sub:
            sub.stop()
        broker.stop()

    counts = {}
    for q, n in got:
        counts[n] = counts.get(n, 0) + 1
    wrong_qos = [(q, n) for q, n in got if q != 1 + n % 2]
    lost = sorted(recorded - set(counts))
    invented = sorted(n for n in counts if n not in recorded and n not in allowed)
    dup1 = sorted(n for n, c in counts.items() if c > 1 and n % 2 == 0)
    dup2 = sorted(n for n, c in counts.items() if c > 1 and n % 2 == 1)
    dup2_republished = [n for n in dup2 if n in allowed and counts[n] == 2]
    dup2_bad = [n for n in dup2 if n not in dup2_republished]
    left, _ = journal(jpath)
    stats.update({"seed": seed, "readings recorded": len(recorded), "messages received": len(got),
                  "lost": len(lost), "QoS 1 duplicates": len(dup1),
                  "QoS 2 duplicates (re-published by the application)": len(dup2_republished),
                  "QoS 2 duplicates (wrong)": len(dup2_bad), "kept in the store at the end": left})
    print("%s: %s" % (interp, ", ".join("%s %s" % kv for kv in stats.items())))
    assert not lost, "lost %d recorded readings: %s (%s)" % (len(lost), lost[:50], stats)
    assert not dup2_bad, "QoS 2 readings delivered twice: %s (%s)" % (
        [(n, counts[n]) for n in dup2_bad][:50], stats)
    assert not invented, "readings never handed to publish(): %s" % invented[:50]
    assert not wrong_qos, "delivered with the wrong QoS: %s" % wrong_qos[:50]
    assert left == 0, "the store still keeps %d messages after the last run" % left
    # and the run was one that proves something
    assert stats["cuts"] >= 40 and stats["broker restarts"] >= 8
    assert len(recorded) >= 300, "too few readings to prove anything: %s" % stats
    assert stats["in compaction"] >= 4, "too few cuts inside a compaction: %s" % stats
