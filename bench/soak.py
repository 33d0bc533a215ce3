"""Soak: thousands of QoS 1 and QoS 2 messages from a robust2 client on the MicroPython
unix port, through a fault proxy, to mosquitto (persistence on), under a seeded random
fault schedule: connections killed (FIN) and reset (RST), half-open links until the
keep-alive notices, acknowledgements lost before the link dies, broker restarts. An
independent subscriber (mosquitto_sub, persistent session, QoS 2) counts what arrives.

    .venv/bin/python bench/soak.py --qos1 20000 --qos2 5000 --seed 1     # the long run
    .venv/bin/python bench/soak.py --qos1 600 --qos2 200 --rate 300      # a short one

It prints what was lost, duplicated and reordered, per QoS, and the longest single
call of the publisher's loop, and exits non-zero when a message was lost, reordered, a
QoS 2 message arrived twice, or a call took over 50 ms. tests/test_soak.py runs
a short soak in CI."""
import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
from brokers import Mosquitto, make_certs  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

FAULTS = ("kill", "reset", "blackhole", "ackloss", "restart")
LONGEST_MS = 50  # the longest single call of the publisher's loop may take (reconnects included)


def faults(broker, proxy, rng, stop, log, gap):
    """Every 0.5 to `gap` s, one fault, drawn from FAULTS with the seeded generator."""
    while not stop.wait(rng.uniform(0.5, gap)):
        f = rng.choice(FAULTS)
        log.append(f)
        if f in ("kill", "reset"):
            proxy.command(f)
        elif f == "blackhole":  # half-open until keep-alive (2 s) gives up on it
            proxy.command("blackhole")
            stop.wait(rng.uniform(1.0, 4.0))
            proxy.command("kill")
            proxy.command("pass")
        elif f == "ackloss":  # the broker's answers vanish, then the link dies
            proxy.command("blackhole down")
            stop.wait(rng.uniform(0.05, 0.5))
            proxy.command("kill")
            proxy.command("pass")
        else:
            broker.stop()
            stop.wait(rng.uniform(0.2, 1.5))
            broker.start()


def analyse(lines, n):
    """Per QoS: lost, duplicated, and reordered (arrived after a later one had)."""
    got = {1: [], 2: []}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("soak/q1", "soak/q2"):
            got[int(parts[0][-1])].append(int(parts[1]))
    res = {}
    for q in (1, 2):
        seen, top, reordered = set(), -1, 0
        for v in got[q]:
            if v in seen:
                continue
            seen.add(v)
            if v < top:
                reordered += 1
            top = max(top, v)
        res[q] = {"sent": n[q], "received": len(got[q]), "lost": len(set(range(n[q])) - seen),
                  "duplicates": len(got[q]) - len(seen), "reordered": reordered}
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qos1", type=int, default=20000)
    ap.add_argument("--qos2", type=int, default=5000)
    ap.add_argument("--rate", type=int, default=200, help="messages a second")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gap", type=float, default=3.0, help="most seconds between two faults")
    ap.add_argument("--seconds", type=int, default=0, help="time limit (default: from the rate)")
    a = ap.parse_args(argv)
    limit = a.seconds or int((a.qos1 + a.qos2) / a.rate * 2) + 60
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory() as d:
        broker = Mosquitto(os.path.join(d, "broker"), make_certs(os.path.join(d, "certs")),
                           max_queued_messages=0).start()
        proxy = FaultProxy(broker.port).start()
        sub_out = open(os.path.join(d, "sub.txt"), "w")
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-i", "soak-sub",
                                "-c", "-q", "2", "-t", "soak/#", "-F", "%t %p"], stdout=sub_out)
        time.sleep(0.3)  # mosquitto_sub has no "subscribed" signal; the session outlives it anyway
        micropython = os.path.join(os.path.dirname(sys.executable), "micropython")
        if not os.path.exists(micropython):  # run by another python: the one tests/setup.sh made
            micropython = os.path.join(REPO, ".venv", "bin", "micropython")
        if not os.path.exists(micropython):
            sys.exit("soak: no MicroPython unix port: run bash tests/setup.sh first")
        env = dict(os.environ, MICROPYPATH="%s:.frozen" % REPO, SOAK_PORT=str(proxy.port),
                   SOAK_QOS1=str(a.qos1), SOAK_QOS2=str(a.qos2), SOAK_RATE=str(a.rate),
                   SOAK_SECONDS=str(limit))
        stop = threading.Event()
        log = []
        t0 = time.monotonic()
        pub = subprocess.Popen([micropython, os.path.join(HERE, "soak_client.py")], env=env,
                               stdout=subprocess.PIPE, text=True)
        chaos = threading.Thread(target=faults, args=(broker, proxy, rng, stop, log, a.gap), daemon=True)
        chaos.start()
        out, _ = pub.communicate(timeout=limit + 30)
        stop.set()
        chaos.join(30)
        if broker.proc is None:
            broker.start()
        n = {1: a.qos1, 2: a.qos2}
        end = time.monotonic() + 30  # let the subscriber catch up, bounded
        while time.monotonic() < end:
            sub_out.flush()
            res = analyse(open(os.path.join(d, "sub.txt")).read().splitlines(), n)
            if not res[1]["lost"] and not res[2]["lost"]:
                break
            time.sleep(0.2)
        sub.terminate()
        sub.wait(5)
        proxy.stop()
        broker.stop()
    print("publisher:", out.strip())
    print("faults (seed %d): %d in %.0f s: %s" % (a.seed, len(log), time.monotonic() - t0,
                                                 ", ".join("%s %d" % (f, log.count(f)) for f in FAULTS)))
    for q in (1, 2):
        print("QoS %d: %s" % (q, ", ".join("%s %d" % kv for kv in res[q].items())))
    longest = int(out.split("longest=")[1].split()[0]) if "longest=" in out else None
    print("longest single call: %s ms (at most %d)" % (longest, LONGEST_MS))
    bad = (pub.returncode or any(res[q]["lost"] or res[q]["reordered"] for q in (1, 2)) or res[2]["duplicates"]
           or longest is None or longest > LONGEST_MS)
    print("RESULT:", "FAIL" if bad else "ok: nothing lost, nothing reordered, QoS 2 exactly once, no call over %d ms"
          % LONGEST_MS)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
