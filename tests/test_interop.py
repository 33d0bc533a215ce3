"""Interop tier (marker `interop`): one scenario matrix against five brokers, each started
here on free 127.0.0.1 ports (interop_brokers.py): mosquitto, amqtt, aedes, RabbitMQ with
rabbitmq_mqtt, ejabberd's mod_mqtt. Every scenario runs as a client script under the
MicroPython unix port and under CPython (conftest.Runner).

Where a broker departs from MQTT 3.1.1 (interop_profiles.py names each deviation), the
scenario asserts what that broker does and that the client copes with it; nothing is
skipped. A broker that is not installed fails its tests, saying what to install
(tests/setup.sh installs them all)."""
import pytest

import interop_brokers
from interop_profiles import PROFILES

BROKERS = ("mosquitto", "amqtt", "aedes", "rabbitmq", "ejabberd")


@pytest.fixture(scope="session", params=BROKERS)
def ibroker(request, tmp_path_factory, certs):
    """Each broker in turn, started once for all its scenarios and stopped after them."""
    name = request.param
    b = interop_brokers.make(name, str(tmp_path_factory.mktemp("interop-" + name)), certs)
    try:
        b.check_installed()
    except interop_brokers.Missing as e:
        pytest.fail("%s cannot run here: %s" % (name, e), pytrace=False)
    try:
        b.start()
    except Exception as e:
        pytest.fail("%s did not start: %s" % (name, e), pytrace=False)
    yield b
    b.stop()


def scenario(run, b, body, **kw):
    """Run body under the runner's interpreter against broker b; on failure, the end of
    the broker's log is shown too."""
    try:
        return run(body, broker=b, env=b.env(), prelude="from interopcase import *", **kw)
    except pytest.fail.Exception as e:
        failed = str(e)
    log = b.log()[-3000:]
    pytest.fail("%s\n--- %s %s log (end) ---\n%s" % (failed, b.name, b.version, log), pytrace=False)


def test_profiles_cover_every_broker():
    assert sorted(PROFILES) == sorted(BROKERS)


def test_a_missing_broker_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(interop_brokers, "AEDES_DIR", str(tmp_path / "nothing"))
    with pytest.raises(interop_brokers.Missing, match="npm install"):
        interop_brokers.IAedes(str(tmp_path)).check_installed()
    monkeypatch.setattr(interop_brokers, "_deb_version", lambda pkg: None)
    for cls, what in ((interop_brokers.IRabbitMQ, "apt-get install rabbitmq-server"),
                      (interop_brokers.IEjabberd, "ejabberd")):
        with pytest.raises(interop_brokers.Missing, match=what):
            cls(str(tmp_path)).check_installed()


def test_connect_ping_and_client_ids(run, ibroker):
    scenario(run, ibroker, """
    c = iclient("conn", keepalive=30)
    eq(c.connect(), 0, "session present on a clean session")
    p = Pump(c)
    c.ping()
    p.until(lambda: 0xD0 in p.types[0], what="PINGRESP")
    c.disconnect()
    eq(c.sock, None)
    # a zero-length client id with a clean session: the broker makes one up
    z = MQTTClient("", HOST, port=PORT, user=USER, password=PASS)
    eq(z.connect(clean_session=True), 0)
    z.ping()
    Pump(z).until(lambda: z._ping_sent is None, what="PINGRESP with an empty client id")
    z.disconnect()
    # ... and with clean_session=0: CONNACK 2 by the standard [MQTT-3.1.3-8]; aedes and
    # ejabberd accept it (deviation): either way the client reports it and stays usable
    if P["empty_id_clean0"]:
        raises(P["empty_id_clean0"], z.connect, False)
        eq(z.sock, None, "no socket kept after the refusal")
    else:
        eq(z.connect(clean_session=False), 0, "accepted, as a new session")
        z.ping()
        Pump(z).until(lambda: z._ping_sent is None, what="PINGRESP")
        z.disconnect()
    eq(z.connect(clean_session=True), 0, "the same client connects again")
    z.disconnect()
    """)


def test_auth_failure(run, ibroker):
    scenario(run, ibroker, """
    port = int(env("MQTT_AUTH_PORT"))
    u, pw = env("MQTT_AUTH_USER"), env("MQTT_AUTH_PASS")
    ok = client("auth", port=port, user=u, password=pw)
    eq(ok.connect(), 0)
    ok.disconnect()
    bad = client("auth-bad", port=port, user=u, password="wrong-" + pw)
    raises(P["auth_code"], bad.connect)
    eq(bad.sock, None, "no socket kept after a refused connect")
    raises(P["auth_code"], client("auth-who", port=port, user="nobody-" + u, password=pw).connect)
    anon = client("auth-anon", port=port, user=None)
    raises(P["anon_code"], anon.connect)
    eq(anon.sock, None)
    # the refused client is not broken: with the right password it gets in
    bad.pswd = pw
    eq(bad.connect(), 0)
    bad.disconnect()
    """)


def test_qos_0_1_2_round_trip(run, ibroker):
    # RabbitMQ has no QoS 2: it grants 1 for a QoS 2 subscription and answers a QoS 2
    # PUBLISH with PUBACK. The client must count that as delivered (status 1, the pid
    # forgotten), send no PUBREL, and carry on. amqtt delivers at the subscription's
    # QoS (QoS 0 arrives as QoS 2): the client runs the QoS 2 receive flow for it.
    scenario(run, ibroker, """
    c = iclient("rt")
    inbox, st = QInbox(c), Status()
    c.set_callback(inbox)
    c.set_callback_status(st)
    eq(c.connect(), 0)
    t = name("rt")
    pump = Pump(c)
    sp = c.subscribe(t + "/#", 2)
    pump.until(lambda: st.of(sp), what="SUBACK")
    eq(st.of(sp), [errno.SDELIVERED], "the filter is granted (RabbitMQ: at QoS 1)")
    eq(pump.granted, [P["granted_qos2"]], "granted QoS")
    for rnd in (1, 2):  # a second round: the client is still right after the first
        st.log[:] = []
        inbox.msgs[:] = []
        del pump.types[0][:]
        pids = [c.publish(t + "/" + str(q), b"m%d" % q, qos=q) for q in (0, 1, 2)]
        eq(pids[0], None)
        check(pids[1] and pids[2] and pids[1] != pids[2], pids)
        pump.until(lambda: len(inbox.msgs) == 3 and st.of(pids[1]) and st.of(pids[2]),
                   what="3 messages and 2 acknowledgements")
        pump.drain(150)
        eq(inbox.payloads(), [b"m0", b"m1", b"m2"], "each message exactly once")
        for m in inbox.msgs:
            q = int(m[1][1:])
            eq(m[4], delivered_qos(q, 2), "QoS of", m[1])
            eq(m[2:4], (False, False), "retain and dup of", m[1])
        eq(st.of(pids[1]), [errno.SDELIVERED], "PUBACK")
        eq(st.of(pids[2]), [errno.SDELIVERED], "the QoS 2 message is delivered")
        eq(len(st.log), 2, "no other status", st.log)
        eq(c.rcv_pids, {}, "nothing left in flight")
        eq(c._qos2_in, set(), "no incoming QoS 2 flow left open")
        types = pump.types[0]
        if P["qos2_ack"] == "puback":
            eq(types.count(0x40), 2, "both of our publishes answered with PUBACK", types)
            eq(types.count(0x50) + types.count(0x70), 0, "no PUBREC, no PUBCOMP", types)
        else:
            eq((types.count(0x40), types.count(0x50), types.count(0x70)), (1, 1, 1), types)
    c.disconnect()
    """)


def test_retained(run, ibroker):
    scenario(run, ibroker, """
    t = name("ret")
    p = iclient("retpub")
    st = Status()
    p.set_callback_status(st)
    p.connect()
    pid = p.publish(t, b"kept", retain=True, qos=1)
    until(lambda: st.of(pid), [p])
    s = iclient("retsub")
    inbox = QInbox(s)
    s.set_callback(inbox)
    s.connect()
    s.subscribe(t, 1)
    until(lambda: inbox.msgs, [s], what="the retained message")
    eq(inbox.msgs[0][1:3], (b"kept", True), "retained flag on a new subscription")
    pid = p.publish(t, b"live", retain=True, qos=1)
    until(lambda: len(inbox.msgs) == 2 and st.of(pid), [p, s])
    eq(inbox.msgs[1][1:3], (b"live", False), "a live message arrives with retain=0")
    pid = p.publish(t, b"", retain=True, qos=1)  # clears the retained message
    until(lambda: st.of(pid), [p, s])
    drain([p, s], 100)
    s2 = iclient("retsub2")
    inbox2 = QInbox(s2)
    s2.set_callback(inbox2)
    s2.connect()
    sp = s2.subscribe(t, 1)
    st2 = Status()
    s2.set_callback_status(st2)
    until(lambda: st2.of(sp), [s2])
    drain([s2], 300)
    eq(inbox2.msgs, [], "the retained message was cleared")
    for c in (p, s, s2):
        c.disconnect()
    """)


def test_will(run, ibroker):
    scenario(run, ibroker, """
    t = name("will")
    w = iclient("watcher")
    inbox, st = QInbox(w), Status()
    w.set_callback(inbox)
    w.set_callback_status(st)
    w.connect()
    sp = w.subscribe(t, 1)
    until(lambda: st.of(sp), [w], what="SUBACK")
    c = iclient("dying")
    c.set_last_will(t, "gone", qos=1)
    c.connect()
    c.sock.close()  # no DISCONNECT: the broker publishes the will
    until(lambda: inbox.msgs, [w], ms=10000, what="the will")
    eq(inbox.msgs[0][1:3], (b"gone", False))
    c2 = iclient("polite")
    c2.set_last_will(t, "not sent")
    c2.connect()
    c2.disconnect()
    drain([w], 400)
    eq(len(inbox.msgs), 1, "no will after DISCONNECT")
    w.disconnect()
    """)


def test_unsubscribe(run, ibroker):
    scenario(run, ibroker, """
    c = iclient("unsub")
    inbox, st = QInbox(c), Status()
    c.set_callback(inbox)
    c.set_callback_status(st)
    c.connect()
    a, b = name("u/a"), name("u/b")
    sp = c.subscribe([(a, 1), (b, 1)])
    until(lambda: len(st.of(sp)) == 2, [c], what="one status per filter")
    eq(st.of(sp), [1, 1])
    c.publish(a, b"1", qos=1)
    c.publish(b, b"2", qos=1)
    until(lambda: len(inbox.msgs) == 2, [c])
    up = c.unsubscribe(a)
    until(lambda: st.of(up), [c], what="UNSUBACK")
    eq(st.of(up), [errno.SDELIVERED])
    pa = c.publish(a, b"after", qos=1)
    pb = c.publish(b, b"still", qos=1)
    until(lambda: len(inbox.msgs) == 3 and st.of(pa) and st.of(pb), [c])
    drain([c], 200)
    eq(inbox.payloads(), [b"1", b"2", b"still"], "nothing on the unsubscribed filter")
    up = c.unsubscribe([b, name("u/never-subscribed")])
    until(lambda: st.of(up), [c], what="UNSUBACK of a list")
    eq(st.of(up), [errno.SDELIVERED])
    pb = c.publish(b, b"gone", qos=1)
    until(lambda: st.of(pb), [c])
    drain([c], 200)
    eq(len(inbox.msgs), 3, "nothing after the last unsubscribe")
    eq(c.rcv_pids, {})
    c.disconnect()
    """)


def test_persistent_session_resume(run, ibroker):
    # Messages published while the client is away are queued in its session: QoS 1 and
    # 2 by all, QoS 0 too by amqtt and RabbitMQ (the standard allows both). amqtt flags
    # them RETAIN=1, ejabberd flags the QoS 1 ones DUP=1 (deviations: the client passes
    # the flags on as they came).
    scenario(run, ibroker, """
    t = name("sess")
    c = fresh("sess")
    inbox = QInbox(c)
    c.set_callback(inbox)
    eq(c.connect(clean_session=False), 0, "no session yet")
    st = Status()
    c.set_callback_status(st)
    sp = c.subscribe(t, 2)
    until(lambda: st.of(sp), [c], what="SUBACK")
    c.disconnect()
    p = iclient("sesspub")
    pst = Status()
    p.set_callback_status(pst)
    p.connect()
    pids = [p.publish(t, b"away%d" % q, qos=q) for q in (0, 1, 2)]
    until(lambda: pst.of(pids[1]) and pst.of(pids[2]), [p], what="acknowledgements")
    p.disconnect()
    eq(c.connect(clean_session=False), 1, "session present")
    want = [b"away1", b"away2"] + ([b"away0"] if P["queues_qos0"] else [])
    until(lambda: len(inbox.msgs) >= len(want), [c], what="the queued messages")
    drain([c], 300)
    eq(inbox.payloads(), sorted(want), "queued while away (QoS 0 queued: %s)" % P["queues_qos0"])
    for m in inbox.msgs:
        eq(m[4], delivered_qos(int(m[1][4:]), 2), "QoS of", m[1])
        dup = P["queued_qos1_dup"] and m[4] == 1
        eq(m[2:4], (P["queued_retain"], dup), "retain and dup of", m[1])
    # the resumed subscription works live too
    pid = c.publish(t, b"back", qos=1)
    until(lambda: len(inbox.msgs) == len(want) + 1 and st.of(pid), [c])
    eq(inbox.msgs[-1][1], b"back")
    eq(c.rcv_pids, {})
    eq(c.connect(clean_session=True), 0, "a clean connect ends the session")
    ended(c)
    eq(c.connect(clean_session=False), 0, "... so none is present after it")
    c.connect(clean_session=True)
    c.disconnect()
    """)


def test_redelivery_of_unacknowledged_message(run, ibroker):
    # The message callback fails on the first delivery, so the client does not
    # acknowledge it (README: set_callback). After a reconnect with the session kept the
    # broker must send it again with DUP=1 [MQTT-4.4.0-1]. aedes re-sends it with DUP=0
    # (deviation: the client delivers it, it cannot tell it from a new one); amqtt never
    # re-sends it (deviation: the message is lost at the broker; the client carries on).
    scenario(run, ibroker, """
    t = name("redeliv")
    c = fresh("redeliv")
    inbox, st = QInbox(c, fail_first=1), Status()
    c.set_callback(inbox)
    c.set_callback_status(st)
    eq(c.connect(clean_session=False), 0)
    sp = c.subscribe(t, 1)
    until(lambda: st.of(sp), [c], what="SUBACK")
    p = iclient("redpub")
    pst = Status()
    p.set_callback_status(pst)
    p.connect()
    pid = p.publish(t, b"unacked", qos=1)
    until(lambda: pst.of(pid), [p])
    t0 = ticks_ms()
    while True:
        try:
            c.check_msg()
        except ValueError:
            break  # the callback's failure reaches the caller; no PUBACK was sent
        check(ticks_diff(ticks_ms(), t0) < 5000, "the message did not come")
        sleep_ms(1)
    eq([m[1:4] for m in inbox.msgs], [(b"unacked", False, False)])
    c.disconnect()
    eq(c.connect(clean_session=False), 1, "session present")
    how = P["redelivery"]
    if how == "none":
        drain([c], 500)
        eq(len(inbox.msgs), 1, "amqtt: the unacknowledged message is not sent again")
    else:
        until(lambda: len(inbox.msgs) == 2, [c], what="the message again")
        eq(inbox.msgs[1][1:4], (b"unacked", False, how == "dup1"), "redelivered, DUP=%d" % (how == "dup1"))
        drain([c], 200)
        eq(len(inbox.msgs), 2, "once")
    # now acknowledged: the next session resume brings nothing back
    c.disconnect()
    eq(c.connect(clean_session=False), 1)
    drain([c], 300)
    n = len(inbox.msgs)
    eq(n, 1 if how == "none" else 2, "nothing re-sent after the PUBACK")
    pid = p.publish(t, b"next", qos=1)
    until(lambda: len(inbox.msgs) == n + 1, [c, p])
    eq(inbox.msgs[-1][1:4], (b"next", False, False))
    c.connect(clean_session=True)
    c.disconnect()
    p.disconnect()
    """)


def test_qos2_exactly_once_across_reconnect(run, ibroker):
    # The link drops right after the client answered a QoS 2 PUBLISH with PUBREC. On the
    # resumed session the broker sends PUBREL again (or the PUBLISH with DUP=1, if our
    # PUBREC was lost): the client completes the flow and delivers the message once.
    # RabbitMQ delivers at QoS 1 (PUBACK already sent): once as well. amqtt sends
    # neither: the client's side of the flow stays open, harmlessly.
    scenario(run, ibroker, """
    t = name("q2r")
    c = fresh("q2r")
    inbox, st = QInbox(c), Status()
    c.set_callback(inbox)
    c.set_callback_status(st)
    eq(c.connect(clean_session=False), 0)
    sp = c.subscribe(t, 2)
    until(lambda: st.of(sp), [c], what="SUBACK")
    p = iclient("q2pub")
    pst = Status()
    p.set_callback_status(pst)
    p.connect()
    pid = p.publish(t, b"exactly once", qos=2)
    pump = Pump(c, p)
    pump.until(lambda: inbox.msgs, what="the message")
    c.sock.close()  # a broken link: a PUBREL already on its way is never read
    eq(c.connect(clean_session=False), 1, "session present")
    pump.until(lambda: pst.of(pid), what="the publisher's flow to end")
    pump.drain(500)
    eq(len(inbox.msgs), 1, "delivered exactly once")
    eq(inbox.msgs[0][4], delivered_qos(2, 2))
    if P["redelivery"] == "none":
        # amqtt never sends the PUBREL again: the flow stays open on the client's side
        eq(len(c._qos2_in), 1, "amqtt: the QoS 2 flow is left open")
    else:
        eq(c._qos2_in, set(), "the QoS 2 flow was completed")
    eq(pst.of(pid), [errno.SDELIVERED])
    # and the next QoS 2 message is delivered once, too
    pid = p.publish(t, b"next", qos=2)
    pump.until(lambda: len(inbox.msgs) == 2 and pst.of(pid), what="the next message")
    pump.drain(200)
    eq(inbox.payloads(), [b"exactly once", b"next"])
    c.connect(clean_session=True)
    c.disconnect()
    p.disconnect()
    """)


@pytest.fixture(scope="module")
def amqtt_anonymous(tmp_path_factory):
    b = interop_brokers.IAmqtt(str(tmp_path_factory.mktemp("amqtt-anon")), anonymous=True)
    b.check_installed()
    yield b.start()
    b.stop()


def test_amqtt_anonymous_session_is_not_kept(run, amqtt_anonymous):
    # amqtt deviation (tests/README.rst): with allow_anonymous on, every session counts as
    # anonymous: nothing is queued for it while away, and it is deleted within a second
    # of the disconnect (amqtt's session monitor), clean_session=0 or not. The client
    # then sees session present = 0, and robust2 renews its subscriptions by itself.
    scenario(run, amqtt_anonymous, """
    from umqtt.robust2 import MQTTClient as Robust
    t = name("anon")
    c = client("anon", cls=Robust)
    inbox = QInbox(c)
    c.set_callback(inbox)
    eq(c.connect(clean_session=False), 0)
    c.subscribe(t, 1)
    until(lambda: not c.things_to_do(), [c], what="SUBACK")
    c.disconnect()
    p = client("anonpub")
    pst = Status()
    p.set_callback_status(pst)
    p.connect()
    pid = p.publish(t, b"while away", qos=1)
    until(lambda: pst.of(pid), [p])
    drain([p], P["session_linger_ms"])
    eq(c.connect(clean_session=False), 0, "amqtt: no session kept for an anonymous client")
    until(lambda: not c.things_to_do(), [c], what="robust2's resubscription")
    pid = p.publish(t, b"after", qos=1)
    until(lambda: inbox.msgs and pst.of(pid), [c, p])
    drain([c, p], 200)
    eq(inbox.payloads(), [b"after"], "the message sent while away is lost by amqtt")
    c.disconnect()
    p.disconnect()
    """)
