# The seeded fuzzer and the corpus replay as a script, for the MicroPython unix port (and
# CPython): test_fuzz.py runs it, fuzz_long.py too.
#   FUZZ_SEEDS=first:count   check the inputs gen(Rng(seed)) of those seeds
#   FUZZ_CORPUS=dir          check every *.fuzz file in dir
#   FUZZ_EXPECT_FAIL=1       (with FUZZ_CORPUS) every file must fail: known library bugs
#   FUZZ_SAVE=dir            write each failing seed's input there as seed-N.fuzz
# Prints one line per failure, then "ok <n> inputs" or "FAILED <k> of <n> inputs" (exit 1).
import os
import sys

import fuzzcore


def main():
    seeds = os.getenv("FUZZ_SEEDS")
    corpus = os.getenv("FUZZ_CORPUS")
    save = os.getenv("FUZZ_SAVE")
    expect_fail = os.getenv("FUZZ_EXPECT_FAIL") == "1"
    n = bad = 0
    if seeds:
        first, count = [int(x) for x in seeds.split(":")]

        def report(seed, inp, msg):
            print("FAIL seed %d: %s" % (seed, msg))
            if save:
                with open("%s/seed-%d.fuzz" % (save, seed), "wb") as f:
                    f.write(fuzzcore.dumps(inp))

        bad += len(fuzzcore.run_seeds(first, count, report))
        n += count
    if corpus:
        for fn in sorted(os.listdir(corpus)):
            if not fn.endswith(".fuzz"):
                continue
            with open(corpus + "/" + fn, "rb") as f:
                inp = fuzzcore.loads(f.read())
            n += 1
            try:
                fuzzcore.check(inp)
                failed = None
            except Exception as e:
                failed = "%s: %s" % (type(e).__name__, e)
            if expect_fail and not failed:
                bad += 1
                print("FAIL %s: passes now (the bug is fixed?)" % fn)
            elif not expect_fail and failed:
                bad += 1
                print("FAIL %s: %s" % (fn, failed))
            else:
                print("ok %s" % fn)
    if bad:
        print("FAILED %d of %d inputs" % (bad, n))
        sys.exit(1)
    print("ok %d inputs" % n)


main()
