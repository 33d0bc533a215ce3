"""Fuzzing what umqtt.simple2 parses (fuzzcore.py has the properties and the model):
broker byte streams after a valid CONNACK, random, well-formed, malformed and mutated,
cut at random points, fed through the scripted fake socket.

- hypothesis on CPython (test_hypothesis_*): FUZZ_EXAMPLES sets the number of examples
  of each (default 1000 for CI; FUZZ_EXAMPLES=1000000 for a long run by hand);
- the seeded generator on CPython in-process and on the MicroPython unix port
  (FUZZ_SEEDS=first:count changes the range; tests/fuzz_long.py runs millions);
- the regression corpus tests/fuzz_corpus/*.fuzz on both interpreters: every input that
  ever failed (the max-size-1 ones: acknowledgements misread while max_size capped
  every packet, not only PUBLISH), and hand-picked nasty ones.

A failing hypothesis example is written to tests/fuzz_corpus/new-failure.fuzz (the
last one written is the shrunk one): add it to the corpus under a telling name."""
import os
import signal
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, TESTS, interpreter_cmd, script_env

if REPO not in sys.path:
    sys.path.insert(0, REPO)

import fuzzcore  # noqa: E402
from fuzzcore import _s16, varint  # noqa: E402

CORPUS = os.path.join(TESTS, "fuzz_corpus")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 1000)
SEEDS = os.environ.get("FUZZ_SEEDS") or "0:10000"
MP_SEEDS = os.environ.get("FUZZ_SEEDS") or "100000:5000"

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), database=None)


def corpus(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".fuzz"))


def load(d, f):
    with open(os.path.join(d, f), "rb") as fh:
        return fuzzcore.loads(fh.read())


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("one input took over %d s: check_msg() hangs?" % HANG_S)


HANG_S = 10


def check_in_time(inp):
    """fuzzcore.check(inp), failing if it does not end within HANG_S (a loop inside one
    check_msg() call would never come back to the call count)."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    try:
        return fuzzcore.check(inp)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check_and_keep(inp):
    try:
        check_in_time(inp)
    except Exception as e:
        with open(os.path.join(CORPUS, "new-failure.fuzz"), "wb") as f:
            f.write(fuzzcore.dumps(inp))
        raise AssertionError("%s\ninput: %s" % (e, fuzzcore.dumps(inp)[:600])) from None


# -- hypothesis strategies: the same kinds of input as fuzzcore.gen, drawn by hypothesis

max_sizes = st.sampled_from(fuzzcore.MAX_SIZES) | st.integers(0, 400)
pids = st.sampled_from(fuzzcore.PIDS) | st.integers(0, 0xFFFF)
topics = st.sampled_from([b"f/1", b"t", b"", b"a/b/c", b"\x00", b"+", b"#"]) | st.binary(max_size=40)


@st.composite
def publish(draw, max_size):
    q = draw(st.sampled_from([0, 1, 2, 2, 3]))
    flags = q << 1 | draw(st.integers(0, 1)) | draw(st.integers(0, 1)) << 3
    topic = draw(topics)
    pid = _s16(draw(pids)) if q else b""
    if draw(st.integers(0, 4)) == 0:  # around max_size
        n = max(0, max_size - len(topic) - 4 + draw(st.integers(-4, 4)))
        n = min(n, 500)
    else:
        n = draw(st.integers(0, 60))
    body = _s16(len(topic)) + topic + pid + bytes(n)
    rem = len(body)
    if draw(st.integers(0, 9)) == 0:  # a Remaining Length that does not match
        rem = draw(st.sampled_from([0, 1, rem - 1, rem + 1, max_size + 1, 0xFFFFFFF]) | st.integers(0, 600))
        rem = max(0, min(rem, 0xFFFFFFF))
    return bytes([0x30 | flags]) + varint(rem) + body


acks = st.builds(lambda op, pid: bytes([op, 2]) + _s16(pid),
                 st.sampled_from([0x40, 0x50, 0x62, 0x70, 0xB0]) | st.integers(0, 255), pids)
subacks = st.builds(lambda pid, codes: bytes([0x90]) + varint(2 + len(codes)) + _s16(pid) + codes, pids,
                    st.lists(st.sampled_from([0, 1, 2, 0x80]) | st.integers(0, 255), max_size=5).map(bytes))
odd_lengths = st.builds(lambda op, lb, tail: bytes([op]) + lb + tail, st.integers(0, 255),
                        st.sampled_from([b"\x80\x00", b"\xff\xff\xff\x7f", b"\x80\x80\x80\x80\x01",
                                         b"\xff\xff\xff\xff\x7f", b"\x80\x80\x80\x00"]),
                        st.binary(max_size=8))
raw_packets = st.builds(lambda op, body: bytes([op]) + varint(len(body)) + body, st.integers(0, 255),
                        st.binary(max_size=12))


def packets(max_size):
    return st.one_of(publish(max_size), acks, subacks, st.just(b"\xd0\x00"), odd_lengths, raw_packets)


@st.composite
def mutated(draw, data):
    d = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        if not d:
            break
        i = draw(st.integers(0, len(d) - 1))
        k = draw(st.integers(0, 4))
        if k == 0:
            d[i] ^= 1 << draw(st.integers(0, 7))
        elif k == 1:
            d[i] = draw(st.integers(0, 255))
        elif k == 2:
            d[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif k == 3:
            del d[i : i + draw(st.integers(1, 4))]
        else:
            del d[i:]
    return bytes(d)


@st.composite
def inputs(draw, streams=None):
    max_size = draw(max_sizes)
    if streams is None:
        data = b"".join(draw(st.lists(packets(max_size), max_size=8)))
        data = draw(mutated(data))
    else:
        data = draw(streams)
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=8))
    end = draw(st.sampled_from(["open", "eof", "reset"]))
    return {"data": data, "cuts": cuts, "max_size": max_size,
            "rmax": draw(st.sampled_from([0, 0, 1, 2, 3, 7])), "eof": end == "eof",
            "reset": end == "reset", "wfail": draw(st.sampled_from([-1, -1, -1, 0, 1, 2])),
            "wplan": draw(st.lists(st.sampled_from([None, 1, 2, 3]), max_size=6))}


@SETTINGS
@given(inputs())
def test_hypothesis_packet_streams(inp):
    check_and_keep(inp)


@SETTINGS
@given(inputs(st.binary(max_size=200)))
def test_hypothesis_random_bytes(inp):
    check_and_keep(inp)


@SETTINGS
@given(inputs(st.lists(st.sampled_from([b"\x30", b"\x32", b"\x34", b"\x62", b"\x90", b"\xd0", b"\x40",
                                        b"\x00", b"\x02", b"\x80", b"\xff", b"\x7f", b"\x01"]),
                       max_size=40).map(b"".join)))
def test_hypothesis_interesting_bytes(inp):
    check_and_keep(inp)


# -- the seeded generator


def test_model_catches_a_wrong_client():
    """The properties can fail: a client that misreads one packet id is caught."""
    inp = {"data": b"\x40\x02\x00\x02", "cuts": [], "rmax": 0, "max_size": 100, "eof": False,
           "wplan": []}
    fuzzcore.check(inp)
    types, msgs, stats, out, code = fuzzcore.model(inp["data"], 100, False)
    assert stats == [(2, 1)] and types == [0x40] and code is None
    inp["data"] = b"\x40\x02\x00\x09"  # not in flight: status 2, and the model says so
    assert fuzzcore.model(inp["data"], 100, False)[2] == [(9, 2)]
    orig = fuzzcore.model
    try:
        fuzzcore.model = lambda *a: orig(b"\x40\x02\x00\x02", 100, False)
        with pytest.raises(fuzzcore.Failure, match="statuses"):
            fuzzcore.check(inp)
    finally:
        fuzzcore.model = orig


def test_seeded_cpython():
    first, count = (int(x) for x in SEEDS.split(":"))
    bad = []
    for seed in range(first, first + count):
        inp = fuzzcore.gen(fuzzcore.Rng(seed))
        try:
            check_in_time(inp)
        except Exception as e:
            bad.append("seed %d: %s: %s\n%r" % (seed, type(e).__name__, e, fuzzcore.dumps(inp)[:400]))
    assert not bad, "%d failed:\n%s" % (len(bad), "\n".join(bad[:5]))


def run_mp(env, timeout=600):
    try:
        p = subprocess.run(interpreter_cmd("micropython") + [os.path.join(TESTS, "fuzz_mp.py")],
                           cwd=TESTS, env=script_env("micropython", extra=env), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail("MicroPython fuzz run hung:\n%s" % (e.output,))
    return p


def test_seeded_micropython():
    p = run_mp({"FUZZ_SEEDS": MP_SEEDS})
    n = MP_SEEDS.split(":")[1]
    if p.returncode != 0 or p.stdout.splitlines()[-1:] != ["ok %s inputs" % n]:
        pytest.fail("MicroPython (exit %s):\n%s" % (p.returncode, p.stdout[-5000:]))


# -- the regression corpus


def test_corpus_is_there():
    assert len(corpus(CORPUS)) >= 30
    assert not os.path.exists(os.path.join(CORPUS, "new-failure.fuzz")), \
        "a fuzzer failure was saved as fuzz_corpus/new-failure.fuzz: fix it, then keep it in the corpus"


@pytest.mark.parametrize("name", corpus(CORPUS))
def test_corpus_cpython(name):
    check_in_time(load(CORPUS, name))


def test_corpus_micropython():
    p = run_mp({"FUZZ_CORPUS": CORPUS})
    if p.returncode != 0 or p.stdout.splitlines()[-1:] != ["ok %d inputs" % len(corpus(CORPUS))]:
        pytest.fail("MicroPython (exit %s):\n%s" % (p.returncode, p.stdout[-5000:]))


def test_file_format_round_trip():
    r = fuzzcore.Rng(7)
    for _ in range(50):
        inp = fuzzcore.gen(r)
        inp["cuts"] = sorted(set(inp["cuts"]))
        assert fuzzcore.loads(fuzzcore.dumps(inp)) == inp
