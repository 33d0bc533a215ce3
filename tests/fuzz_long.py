"""The long fuzz run, by hand (CI runs a few thousand inputs: test_fuzz.py).

    .venv/bin/python tests/fuzz_long.py                      # 1,000,000 seeds on CPython
    .venv/bin/python tests/fuzz_long.py --count 200000 --micropython 200000
    .venv/bin/python tests/fuzz_long.py --start 5000000      # other seeds
    FUZZ_EXAMPLES=1000000 .venv/bin/python -m pytest tests/test_fuzz.py -k hypothesis

Runs fuzzcore's seeded inputs in chunks, one process per core (fuzz_mp.py under
CPython and/or the MicroPython unix port), writes every failing input to --save
(default tests/fuzz_corpus/new/) as seed-N.fuzz, and prints the count and the result.
Exit status 1 if anything failed. A failing input, once understood, goes into
tests/fuzz_corpus/."""
import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


def chunk_cmd(interp, first, count, save):
    env = dict(os.environ, FUZZ_SEEDS="%d:%d" % (first, count), FUZZ_SAVE=save)
    if interp == "micropython":
        env["MICROPYPATH"] = "%s:%s:.frozen" % (REPO, TESTS)
        return [MICROPYTHON, os.path.join(TESTS, "fuzz_mp.py")], env
    env["PYTHONPATH"] = "%s:%s" % (REPO, TESTS)
    return [sys.executable, os.path.join(TESTS, "fuzz_mp.py")], env


def run_chunk(job):
    interp, first, count, save = job
    cmd, env = chunk_cmd(interp, first, count, save)
    t = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=TESTS, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=3600)
    except subprocess.TimeoutExpired as e:
        return interp, first, count, ["HANG %s seeds %d..%d: no end in an hour: %s" % (
            interp, first, first + count - 1, (e.output or b"")[-2000:])], time.monotonic() - t
    fails = [ln for ln in p.stdout.splitlines() if ln.startswith("FAIL seed")]
    ok = p.returncode == 0 and p.stdout.rstrip().endswith("ok %d inputs" % count)
    if not ok and not fails:  # crashed: the harness itself
        fails = ["CRASH %s seeds %d..%d: %s" % (interp, first, first + count - 1, p.stdout[-2000:])]
    return interp, first, count, fails, time.monotonic() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000000, help="seeds on CPython (default 1,000,000)")
    ap.add_argument("--micropython", type=int, default=0, help="seeds on MicroPython (after the CPython ones)")
    ap.add_argument("--start", type=int, default=1000000, help="first seed (CI uses 0.. and 100000..)")
    ap.add_argument("--chunk", type=int, default=25000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--save", default=os.path.join(TESTS, "fuzz_corpus", "new"))
    a = ap.parse_args()
    os.makedirs(a.save, exist_ok=True)
    jobs = []
    s = a.start
    for interp, n in (("cpython", a.count), ("micropython", a.micropython)):
        end = s + n
        while s < end:
            k = min(a.chunk, end - s)
            jobs.append((interp, s, k, a.save))
            s += k
    t0 = time.monotonic()
    done = {"cpython": 0, "micropython": 0}
    failures = []
    with ThreadPoolExecutor(a.jobs) as ex:
        for interp, first, count, fails, dt in ex.map(run_chunk, jobs):
            done[interp] += count
            failures += fails
            print("%-11s seeds %d..%d: %s (%.0f s; %d done in %.0f s)" % (
                interp, first, first + count - 1, "%d FAILED" % len(fails) if fails else "ok", dt,
                sum(done.values()), time.monotonic() - t0), flush=True)
    for f in failures[:50]:
        print(f)
    total = sum(done.values())
    print("fuzz_long: %d inputs (%d CPython, %d MicroPython), seeds %d..%d, %d failed, %.0f s" % (
        total, done["cpython"], done["micropython"], a.start, a.start + total - 1, len(failures),
        time.monotonic() - t0))
    if failures:
        print("failing inputs saved in", a.save)
    elif not os.listdir(a.save):
        os.rmdir(a.save)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
