"""Publish/subscribe round trips against real brokers, on MicroPython and CPython."""
import pytest

BOTH = pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])


@BOTH
def test_qos_0_1_2_round_trip(run, broker):
    run("""
    c = client("rt")
    inbox, st = Inbox(), Status()
    c.set_callback(inbox)
    c.set_callback_status(st)
    eq(c.connect(), 0, "session present on a clean session")
    t = name("rt/x")
    sp = c.subscribe(t + "/#", 2)
    until(lambda: st.of(sp) == [errno.SDELIVERED], [c], what="SUBACK")
    pids = [c.publish(t + "/" + str(q), b"m%d" % q, qos=q) for q in (0, 1, 2)]
    eq(pids[0], None)
    check(pids[1] and pids[2] and pids[1] != pids[2], pids)
    until(lambda: len(inbox.msgs) == 3 and len(st.log) == 3, [c], what="messages and acks")
    eq(sorted(inbox.payloads()), [b"m0", b"m1", b"m2"])
    eq(st.of(pids[1]), [errno.SDELIVERED], "PUBACK")
    eq(st.of(pids[2]), [errno.SDELIVERED], "PUBCOMP")
    eq(c.rcv_pids, {}, "nothing left in flight")
    c.disconnect()
    """, broker=broker)


@BOTH
def test_utf8_topics_payloads_and_ids(run, broker):
    run("""
    c = client("zażółć-ü")
    inbox = Inbox()
    c.set_callback(inbox)
    c.connect()
    t = name("utf8/zażółć/€")
    c.subscribe(t, 1)
    c.publish(t, "gęślą jaźń €", qos=1)
    until(lambda: inbox.msgs, [c])
    eq(inbox.msgs[0][0], t.encode())
    eq(inbox.msgs[0][1], "gęślą jaźń €".encode())
    c.disconnect()
    """, broker=broker)


@BOTH
def test_subscribe_list_and_unsubscribe(run, broker):
    run("""
    c = client("multi")
    inbox, st = Inbox(), Status()
    c.set_callback(inbox)
    c.set_callback_status(st)
    c.connect()
    a, b = name("m/a"), name("m/b")
    pid = c.subscribe([(a, 0), (b, 1)])
    until(lambda: len(st.of(pid)) == 2, [c], what="one status per filter")
    eq(st.of(pid), [1, 1])
    c.publish(a, b"1")
    c.publish(b, b"2", qos=1)
    until(lambda: len(inbox.msgs) == 2, [c])
    up = c.unsubscribe([a, b])
    until(lambda: st.of(up) == [1], [c], what="UNSUBACK")
    p = c.publish(a, b"after", qos=1)
    until(lambda: st.of(p), [c])
    drain([c], 200)
    eq(len(inbox.msgs), 2, "nothing after unsubscribe")
    c.disconnect()
    """, broker=broker)


@BOTH
def test_retained_and_empty_payload(run, broker):
    run("""
    t = name("ret")
    p = client("retpub")
    st = Status()
    p.set_callback_status(st)
    p.connect()
    pid = p.publish(t, b"kept", retain=True, qos=1)
    until(lambda: st.of(pid), [p])
    s = client("retsub")
    inbox = Inbox()
    s.set_callback(inbox)
    s.connect()
    s.subscribe(t, 1)
    until(lambda: inbox.msgs, [s])
    eq(inbox.msgs[0][1:3], (b"kept", True))
    pid = p.publish(t, b"", retain=True, qos=1)  # clears the retained message
    until(lambda: len(inbox.msgs) == 2 and st.of(pid), [p, s])
    eq(inbox.msgs[1][1:3], (b"", False), "a live message arrives with retain=0")
    s.disconnect()
    p.disconnect()
    """, broker=broker)


@BOTH
def test_last_will_on_abnormal_close(run, broker):
    run("""
    t = name("will")
    w = client("watcher")
    inbox = Inbox()
    w.set_callback(inbox)
    w.connect()
    w.subscribe(t, 1)
    drain([w], 100)
    c = client("dying")
    c.set_last_will(t, "gone", qos=1)
    c.connect()
    c.sock.close()  # no DISCONNECT: the broker publishes the will
    until(lambda: inbox.msgs, [w], what="the will")
    eq(inbox.msgs[0][1], b"gone")
    c2 = client("polite")
    c2.set_last_will(t, "not sent")
    c2.connect()
    c2.disconnect()
    drain([w], 300)
    eq(len(inbox.msgs), 1, "no will after DISCONNECT")
    w.disconnect()
    """, broker=broker)


def test_persistent_session_resumes(run):
    # mosquitto only: amqtt's sessions are not faithful (tests/README.rst, amqtt)
    run("""
    t = name("sess")
    c = client("sess")
    inbox = Inbox()
    c.set_callback(inbox)
    eq(c.connect(clean_session=False), 0)
    c.subscribe(t, 1)
    drain([c], 100)
    c.disconnect()
    p = client("sesspub")
    p.connect()
    p.publish(t, b"while away", qos=1)
    drain([p], 100)
    p.disconnect()
    eq(c.connect(clean_session=False), 1, "session present")
    until(lambda: inbox.msgs, [c], what="the queued message")
    eq(inbox.msgs[0][1], b"while away")
    eq(c.connect(clean_session=True), 0)
    c.disconnect()
    """)


def test_password_login_and_refusal(run):
    run("""
    port = int(env("MQTT_AUTH_PORT"))
    c = client("auth", port=port, user="alice", password="secret")
    eq(c.connect(), 0)
    c.disconnect()
    bad = client("auth2", port=port, user="alice", password="wrong")
    e = raises(errno.ECONAUTH, bad.connect)
    eq(bad.sock, None, "no socket kept after a refused connect")
    raises(errno.ECONAUTH, client("anon", port=port).connect)
    """)
