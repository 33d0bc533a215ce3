"""Writes the hand-picked inputs of the fuzz regression corpus (tests/fuzz_corpus/*.fuzz)
and says how each fares now. Run it from anywhere:
    .venv/bin/python tests/fuzz_corpus/handpicked.py
The corpus files are what the tests replay; this script only documents how they were
made. Inputs found by the fuzzers are added as files directly (seed-N.fuzz, or a name
that says what they hit)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(os.path.dirname(HERE)), os.path.dirname(HERE)]
os.chdir(os.path.dirname(HERE))
import fuzzcore as F
from fuzzcore import varint, _s16
def pub(topic, msg, q=0, pid=0, flags=0):
    body = _s16(len(topic)) + topic + (_s16(pid) if q else b"") + msg
    return bytes([0x30 | q << 1 | flags]) + varint(len(body)) + body
def w(path, data, max_size=16384, cuts=(), rmax=0, eof=False, wplan=(), reset=False, wfail=-1):
    inp = dict(data=data, max_size=max_size, cuts=list(cuts), rmax=rmax, eof=eof, wplan=list(wplan), reset=reset, wfail=wfail)
    open("fuzz_corpus/" + path, "wb").write(F.dumps(inp))
    try:
        F.check(inp); r = "ok"
    except Exception as e:
        r = "FAIL " + str(e)
    print(path, F.model(data, max_size, eof, F.INFLIGHT, reset, wfail)[4], r)
valid = (pub(b"a/b", b"hello") + pub(b"a/b", b"again", 1, 7) + pub(b"c/d", b"x", 2, 9) + b"\x62\x02\x00\x09"
         + b"\x40\x02\x00\x02" + b"\x50\x02\x00\x03" + b"\x70\x02\x00\x03" + b"\x90\x05\x00\x01\x00\x01\x80"
         + b"\xb0\x02\x00\x04" + b"\xd0\x00")
w("every-packet-type-byte-by-byte.fuzz", valid, rmax=1)
w("every-packet-type-cut-everywhere.fuzz", valid, cuts=range(len(valid) + 1))
w("every-packet-type-eof.fuzz", valid, eof=True)
w("every-packet-type-partial-writes.fuzz", valid, wplan=[1, None, 1, 2, None, 3, 1])
w("remaining-length-5-bytes.fuzz", b"\x30\x80\x80\x80\x80\x01" + b"\x00" * 8)
w("remaining-length-5-bytes-pingresp.fuzz", b"\xd0\xff\xff\xff\xff\x7f", eof=True)
w("remaining-length-max-skipped-then-eof.fuzz", b"\x30\xff\xff\xff\x7f" + _s16(1) + b"t" + b"z" * 20000, eof=True)
w("remaining-length-non-minimal-pingresp.fuzz", b"\xd0\x80\x80\x80\x00" + b"\xd0\x80\x00")
w("remaining-length-truncated.fuzz", b"\x30\xff\xff", eof=True)
w("publish-qos3.fuzz", b"\x36\x05\x00\x01t\x00\x01")
w("publish-rem-0.fuzz", b"\x30\x00")
w("publish-rem-1.fuzz", b"\x30\x01\x00")
w("publish-topic-length-ffff.fuzz", b"\x30\x06\xff\xff" + b"abcd")
w("publish-topic-length-ffff-oversize.fuzz", b"\x30\x14\xff\xff" + b"a" * 18, max_size=16)
w("publish-topic-over-max-size.fuzz", pub(b"t" * 40, b"m" * 30, 1, 5), max_size=20)
w("publish-qos1-pid-0.fuzz", pub(b"t", b"m", 1, 0))
w("publish-qos2-pid-0.fuzz", pub(b"t", b"m", 2, 0))
w("publish-oversize-skipped-qos2.fuzz", pub(b"t", b"x" * 200, 2, 77) + pub(b"t", b"y" * 200, 2, 77) + b"\x62\x02\x00\x4d" + pub(b"t", b"small", 2, 77)[:0] + pub(b"u", b"ok"), max_size=64, rmax=7)
w("publish-empty-topic-and-payload.fuzz", pub(b"", b"") + pub(b"", b"", 1, 1))
w("publish-topic-cache-same-length.fuzz", pub(b"ab", b"1") + pub(b"ab", b"2") + pub(b"cd", b"3") + pub(b"ab", b"4") + pub(b"a", b"5"), cuts=[3, 9, 14])
w("publish-qos2-duplicate-then-pubrel.fuzz", pub(b"t", b"one", 2, 5) + pub(b"t", b"one", 2, 5, 8) + b"\x62\x02\x00\x05" + pub(b"t", b"two", 2, 5))
w("publish-retain-dup-flags.fuzz", pub(b"t", b"r", 0, 0, 1) + pub(b"t", b"d", 1, 3, 8) + pub(b"t", b"rd", 1, 3, 9))
w("pubrel-wrong-flags.fuzz", b"\x60\x02\x00\x01")
w("puback-wrong-flags.fuzz", b"\x42\x02\x00\x02")
w("puback-rem-3.fuzz", b"\x40\x03\x00\x02\x00")
w("puback-rem-1.fuzz", b"\x40\x01\x00")
w("pingresp-rem-1.fuzz", b"\xd0\x01\x00")
w("connack-after-connect.fuzz", b"\x20\x02\x00\x00")
w("pingreq-from-broker.fuzz", b"\xc0\x00")
w("type-0-and-15.fuzz", b"\x00\x00", eof=True)
w("type-15.fuzz", b"\xf0\x00")
w("suback-bad-code-after-good.fuzz", b"\x90\x05\x00\x01\x00\x80\x03")
w("suback-rem-2.fuzz", b"\x90\x02\x00\x01")
w("suback-over-max-size.fuzz", b"\x90\x05\x00\x01\x00\x01\x02", max_size=4)
w("suback-unknown-pid-many-codes.fuzz", b"\x90\x06\x12\x34\x00\x01\x02\x80")
w("acks-unknown-and-repeated-pids.fuzz", b"\x40\x02\x00\x02\x40\x02\x00\x02\x70\x02\xff\xff\xb0\x02\x00\x00\x50\x02\x00\x00\x62\x02\x00\x00")
w("acks-max-size-0.fuzz", b"\x40\x02\x00\x02\x62\x02\x00\x05\xb0\x02\x00\x04\xd0\x00", max_size=0)
w("eof-mid-header.fuzz", b"\x30", eof=True)
w("eof-mid-body.fuzz", pub(b"topic", b"message")[:-3], eof=True)
w("eof-mid-skip.fuzz", pub(b"t", b"x" * 300, 1, 9)[:-100], max_size=100, eof=True)
w("empty-eof.fuzz", b"", eof=True)
# known library bugs: these must fail until it is fixed
w("max-size-1-puback-pid.fuzz", b"\x40\x02\x00\x02", max_size=1)
w("max-size-1-pubrel-answer.fuzz", b"\x62\x02\x00\x05", max_size=1)
w("publish-exactly-max-size.fuzz", pub(b"t", b"x" * (64 - 3)) + pub(b"t", b"x" * (64 - 2)) + pub(b"t", b"y", 1, 2), max_size=64)
w("found-seeded-max-size-1-pubcomp.fuzz", bytes.fromhex("70020001"), max_size=1)
w("found-seeded-max-size-1-pubcomp-then-junk.fuzz", bytes.fromhex("700200700200"), max_size=1)
w("found-hypothesis-max-size-1-puback-pid-0-acks-pid-2.fuzz", b"\x40\x02\x00\x00", max_size=1)

w("reset-mid-publish.fuzz", pub(b"topic", b"message", 1, 3)[:-2], reset=True, rmax=3)
w("reset-after-everything.fuzz", valid, reset=True, cuts=[5, 17])
w("reset-mid-header.fuzz", b"\x30\x80", reset=True)
w("wfail-first-puback.fuzz", pub(b"t", b"m", 1, 3) + pub(b"t", b"n"), wfail=0)
w("wfail-pubrel-answer.fuzz", pub(b"t", b"m", 2, 3) + b"\x62\x02\x00\x03" + pub(b"t", b"m", 2, 3), wfail=1)
w("wfail-pubrec-answer.fuzz", b"\x50\x02\x00\x03\x70\x02\x00\x03", wfail=0, wplan=[1, 1])
w("wfail-after-partial-writes.fuzz", valid, wfail=3, wplan=[1, None, 2, 1, None, 1, 3])
