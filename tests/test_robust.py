"""umqtt.robust2 against a real mosquitto, on MicroPython and CPython: queueing while
offline, re-sending in order after reconnects and broker restarts, overflow reports,
backoff that never blocks, refusals, resubscription, and the peer's main loop."""
import pytest

SUB = """
from umqtt.robust2 import MQTTClient as R
def by_qos(msgs, qos):
    # the broker keeps order per QoS level [MQTT-4.6.0]: QoS 2 goes out on PUBREL
    # message i was published with QoS 1 + i % 2
    return [m for m in msgs if int(m.lstrip(b"q")) % 2 == qos - 1]
def settle(c, s, inbox, n, ms=15000):
    # run both until c has nothing left and n distinct messages reached s
    t0 = ticks_ms()
    while c.things_to_do() or len(set(inbox.payloads())) < n:
        if c.is_conn_issue():
            c.reconnect()
        c.check_msg()
        c.send_queue()
        s.check_msg()
        check(ticks_diff(ticks_ms(), t0) < ms, "delivered", inbox.payloads())
        sleep_ms(1)
def in_order(got, sent):
    for q in (1, 2):
        eq(by_qos(got, q), by_qos(sent, q), "order of QoS", q)

def subscriber(cid, topic, qos=2, **kw):
    s = client(cid, **kw)
    inbox = Inbox()
    s.set_callback(inbox)
    s.connect(clean_session=False)
    p = s.subscribe(topic, qos)
    st = Status()
    s.set_callback_status(st)
    until(lambda: st.of(p), [s], what="SUBACK")
    return s, inbox
"""


def test_qos1_and_qos2_delivered_and_confirmed(run):
    run(prelude=SUB, body="""
    c = client("r-basic", cls=R)
    st = Status()
    c.set_callback_status(st)
    eq(c.connect(), 0)
    t = name("r/basic")
    s, inbox = subscriber("r-basic-sub", t)
    pids = [c.publish(t, b"%d" % i, qos=1 + i % 2) for i in range(10)]
    check(None not in pids, pids)
    until(lambda: c.things_to_do() == 0 and len(inbox.msgs) == 10, [c, s])
    in_order(inbox.payloads(), [b"%d" % i for i in range(10)])
    eq(sorted(st.log), sorted((p, errno.SDELIVERED) for p in pids))
    c.disconnect()
    s.disconnect()
    """)


def test_offline_queue_is_sent_in_order_once_the_broker_is_up(run, own_mosquitto):
    run(prelude=SUB, body="""
    c = client("r-off", cls=R, socket_timeout=1)
    c.MSG_QUEUE_MAX = 50
    st = Status()
    c.set_callback_status(st)
    eq(c.connect(clean_session=False), None, "no broker yet")
    check(c.is_conn_issue() and isinstance(c.conn_issue[0], OSError), c.conn_issue)
    eq(c.conn_issue[1], 1, "place: connect")
    t = name("r/off")
    pids = [c.publish(t, b"q%d" % i, qos=1 + i % 2) for i in range(6)]
    check(None not in pids and len(set(pids)) == 6, "a pid for every queued message", pids)
    eq(c.publish(t, b"zero"), None)
    eq(c.things_to_do(), 7)
    ask("start")
    s, inbox = subscriber("r-off-sub", t)
    t0 = ticks_ms()
    while c.is_conn_issue():
        check(c.reconnect() is None or not c.is_conn_issue())
        check(ticks_diff(ticks_ms(), t0) < 20000, "reconnected in time")
        sleep_ms(10)
    c.send_queue()  # (as the peer's loop does: the queue waits for it after a reconnect)
    until(lambda: c.things_to_do() == 0 and len(inbox.msgs) == 7, [c, s])
    got = inbox.payloads()
    check(b"zero" in got)
    got.remove(b"zero")
    in_order(got, [b"q%d" % i for i in range(6)])
    eq(sorted(p for p, x in st.log if x == errno.SDELIVERED), sorted(pids))
    c.disconnect()
    s.disconnect()
    """, broker=own_mosquitto, actions={"start": own_mosquitto.start})


def test_broker_restart_loses_nothing(run, own_mosquitto):
    # the broker goes away and comes back (with its persistent sessions) while the
    # client keeps publishing QoS 1 and 2: everything arrives, in order, QoS 2 once
    own_mosquitto.start()
    run(prelude=SUB, body="""
    t = name("r/restart")
    c = client("r-rst", cls=R, socket_timeout=1, keepalive=5)
    c.MSG_QUEUE_MAX = 100
    c.DELAY_MIN = 50
    c.DELAY_MAX = 200
    c.connect(clean_session=False)
    s, inbox = subscriber("r-rst-sub", t, cls=R, socket_timeout=1)
    s.DELAY_MIN = 50
    s.DELAY_MAX = 200
    sent = []
    def step(n):
        for i in range(n):
            k = len(sent)
            sent.append(b"%d" % k)
            c.publish(t, sent[-1], qos=1 + k % 2)
            for x in (c, s):
                if x.is_conn_issue():
                    x.reconnect()
                x.check_msg()
    step(30)
    ask("restart")
    step(30)
    ask("stop")
    step(20)  # queued: the broker is down
    ask("start")
    t0 = ticks_ms()
    while c.things_to_do() or len(set(inbox.payloads())) < len(sent):
        for x in (c, s):
            if x.is_conn_issue():
                x.reconnect()
            x.check_msg()
        sleep_ms(1)
        check(ticks_diff(ticks_ms(), t0) < 30000, "delivered in time", len(inbox.msgs), c.things_to_do())
    got = inbox.payloads()
    # QoS 1 may arrive twice (DUP) when its PUBACK was lost; QoS 2 exactly once
    uniq = []
    for m in got:
        if m not in uniq:
            uniq.append(m)
    eq(sorted(uniq), sorted(sent), "nothing lost")
    in_order(uniq, sent)
    for m in set(got):
        check(got.count(m) == 1 or int(m) % 2 == 0, "a QoS 2 message twice", m)
    c.disconnect()
    s.disconnect()
    """, broker=own_mosquitto, timeout=90, actions={
        "start": own_mosquitto.start, "stop": own_mosquitto.stop,
        "restart": lambda: (own_mosquitto.stop(), own_mosquitto.start())})


def test_queue_overflow_drops_are_reported(run):
    run(prelude=SUB, body="""
    c = client("r-ovf", cls=R, port=1)  # nothing listens on port 1
    c.MSG_QUEUE_MAX = 3
    st = Status()
    c.set_callback_status(st)
    c.connect()
    t = name("r/ovf")
    c.publish(t, b"a0", qos=0)
    pids = [c.publish(t, b"b%d" % i, qos=1) for i in range(4)]
    # the QoS 0 message goes first, then the oldest QoS 1
    eq([m[1] for m in c.msg_to_send], [b"b1", b"b2", b"b3"])
    eq(st.log, [(0, errno.SDROPPED), (pids[0], errno.SDROPPED)])
    # the heap a message holds: topic, payload and a fixed overhead each
    c.MSG_QUEUE_BYTES = 2 * (len(t) + c.msg_to_send.OVERHEAD) + 3
    c.publish(t, b"c", qos=1)
    eq(c.msg_to_send.bytes, c.MSG_QUEUE_BYTES)
    eq([m[1] for m in c.msg_to_send], [b"b3", b"c"], "the byte bound")
    eq([s for p, s in st.log].count(errno.SDROPPED), 4)
    """)


def test_reconnect_backs_off_without_blocking(run):
    run("""
    from umqtt.robust2 import MQTTClient as R
    from umqtt.simple2 import MQTTClient as S
    c = client("r-bo", cls=R, port=1)
    c.DELAY_MIN = 200
    attempts = [0]
    connect = S.start_connect
    def counting(self, *a):
        attempts[0] += 1
        return connect(self, *a)
    S.start_connect = counting
    t0 = ticks_ms()
    longest = 0
    while ticks_diff(ticks_ms(), t0) < 1500:
        t1 = ticks_ms()
        c.reconnect()
        longest = max(longest, ticks_diff(ticks_ms(), t1))
        sleep_ms(1)
    S.start_connect = connect
    check(c.is_conn_issue())
    eq(c.conn_issue[1], 4, "place: reconnect")
    # 0, ~100-200, ~200-400, ~400-800 ms: a handful of attempts, not hundreds
    check(2 <= attempts[0] <= 6, "attempts", attempts[0])
    check(longest < 200, "reconnect() returned at once", longest)
    d = [c.delay(n) for n in range(20)]
    check(all(c.DELAY_MAX // 2 <= x <= c.DELAY_MAX for x in d[12:]), "capped", d)
    check(d[0] <= c.DELAY_MIN and d[1] <= 2 * c.DELAY_MIN, d)
    """)


def test_refused_login_is_reported_and_waits_longest(run):
    run("""
    from umqtt.robust2 import MQTTClient as R
    c = client("r-ref", cls=R, port=int(env("MQTT_AUTH_PORT")), user="alice", password="bad")
    eq(c.connect(), None)
    check(isinstance(c.conn_issue[0], MQTTException))
    eq(c.conn_issue[0].args[0], errno.ECONAUTH)
    eq(c.reconnect(), None)
    check(c._fails >= 16 and ticks_diff(c._when, ticks_ms()) > c.DELAY_MAX // 4, "next try far away")
    """)


def test_lost_session_resubscribes_and_peer_loop_works(run, own_mosquitto):
    # The peer's example main loop, unchanged; the broker restarts WITHOUT its session
    # (persistence off), so robust2 must renew the subscription by itself.
    own_mosquitto.start()
    run("""
    from umqtt.robust2 import MQTTClient as R
    t = name("r/loop")
    inbox = Inbox()
    c = client("r-loop", cls=R, socket_timeout=1)
    c.DELAY_MIN = 50
    c.set_last_will(t + "/status", "Disconnected", retain=True)
    c.set_callback(inbox)
    if not c.connect(clean_session=False):
        c.subscribe(t, 1)
    p = client("r-loop-pub")
    p.connect()
    n = 0
    t0 = ticks_ms()
    while len(inbox.msgs) < 6:
        check(ticks_diff(ticks_ms(), t0) < 30000, "messages", inbox.payloads())
        sleep_ms(10)
        if c.is_conn_issue():
            while c.is_conn_issue():
                c.reconnect()
                check(ticks_diff(ticks_ms(), t0) < 30000, "reconnect")
                sleep_ms(5)
            else:
                c.publish(t + "/status", "Connected", retain=True)
            c.resubscribe()
        c.publish(t + "/data", b"x", qos=1)
        for i in range(50):
            c.check_msg()
            c.send_queue()
            if not c.things_to_do():
                break
            sleep_ms(1)
        if n == 3:
            ask("restart")  # the broker forgets every session
            p.connect()
        if n < 6 and not p.is_conn_issue() if hasattr(p, "is_conn_issue") else True:
            try:
                p.publish(t, b"m%d" % n, qos=1)
                n += 1
            except Exception:
                pass
    eq(inbox.payloads()[:3], [b"m0", b"m1", b"m2"])
    check(b"m5" in inbox.payloads(), "received after the broker lost the session", inbox.payloads())
    c.disconnect()
    """, broker=own_mosquitto, timeout=60, actions={
        "restart": lambda: (own_mosquitto.stop(), wipe(own_mosquitto), own_mosquitto.start())})


def wipe(m):
    import glob
    import os

    for f in glob.glob(os.path.join(m.dir, "data", "*")):
        os.remove(f)


def test_inflight_window_holds_back_the_rest(run):
    run(prelude=SUB, body="""
    c = client("r-win", cls=R)
    c.MSG_QUEUE_MAX = 100
    c.connect()
    t = name("r/win")
    s, inbox = subscriber("r-win-sub", t)
    most = 0
    for i in range(60):
        c.publish(t, b"%d" % i, qos=2)
        most = max(most, len(c.inflight))
    check(most == c.CONFIRM_QUEUE_MAX == 20, "window", most)
    eq(len(c.msg_to_send), 40)
    until(lambda: c.things_to_do() == 0 and len(inbox.msgs) == 60, [c, s], ms=20000)
    eq(inbox.payloads(), [b"%d" % i for i in range(60)])
    """)


def test_bad_arguments_raise_instead_of_queueing(run):
    run("""
    from umqtt.robust2 import MQTTClient as R
    c = client("r-arg", cls=R, port=1)
    c.connect()
    raises(errno.EARG, c.publish, "a/+", b"x", qos=1)
    raises(errno.EARG, c.publish, "a", b"x", qos=3)
    raises(errno.EARG, c.publish, 5, b"x")
    eq(c.things_to_do(), 0)
    """)

@pytest.fixture
def through_proxy(mosquitto):
    """run() arguments for a script whose client "r" talks through a fault proxy (port
    in PROXY_PORT) and switches it with ask("blackhole"), ask("kill")..."""
    from faultproxy import FaultProxy

    px = FaultProxy(mosquitto.port).start()
    yield {"env": {"PROXY_PORT": str(px.port)},
           "actions": {k: (lambda k=k: px.command(k)) for k in ("blackhole", "blackhole down", "kill", "pass")}}
    px.stop()


def test_unanswered_messages_are_resent_in_order_after_the_link_dies(run, through_proxy):
    # The link goes half-open: PUBLISHes vanish on the way, then the connection dies.
    # After the reconnect (session kept) they go again, DUP=1 with their own pids,
    # before anything new.
    run(prelude=SUB, body="""
        t = name("r/px")
        s, inbox = subscriber("r-px-sub", t)
        c = client("r-px", cls=R, port=int(env("PROXY_PORT")), socket_timeout=1)
        c.DELAY_MIN = 20
        st = Status()
        c.set_callback_status(st)
        c.connect(clean_session=False)
        ask("blackhole")
        pids = [c.publish(t, b"%d" % i, qos=1 + i % 2) for i in range(10)]
        eq([m[4] for m in c.inflight], pids, "in flight, in order")
        ask("kill")
        ask("pass")
        c.publish(t, b"11", qos=2)
        settle(c, s, inbox, 11)
        got = inbox.payloads()
        eq(sorted(got), sorted([b"%d" % i for i in range(12) if i != 10]), "nothing lost")
        in_order(got, [b"%d" % i for i in range(12) if i != 10])
        delivered = [p for p, x in st.log if x == errno.SDELIVERED]
        check(all(p in delivered for p in pids), "every pid confirmed", st.log)
        """, **through_proxy)


def test_lost_acknowledgements_mean_dup_resends_and_qos2_exactly_once(run, through_proxy):
    # The broker got every PUBLISH, but its PUBACKs / PUBRECs never come back before the
    # connection dies: after the reconnect (session kept) robust2 re-sends them, DUP=1
    # with the same pids, and the broker's session keeps QoS 2 exactly once.
    run(prelude=SUB, body="""
        t = name("r/ack")
        s, inbox = subscriber("r-ack-sub", t)
        c = client("r-ack", cls=R, port=int(env("PROXY_PORT")), socket_timeout=1)
        c.DELAY_MIN = 20
        c.connect(clean_session=False)
        ask("blackhole down")
        pids = [c.publish(t, b"%d" % i, qos=1 + i % 2) for i in range(10)]
        until(lambda: len(inbox.msgs) == 5, [s], what="the broker has the QoS 1 ones")
        eq(len(c.inflight), 10)
        ask("kill")
        ask("pass")
        settle(c, s, inbox, 10)
        drain([s], 300)
        got = inbox.payloads()
        in_order([m for i, m in enumerate(got) if m not in got[:i]], [b"%d" % i for i in range(10)])
        q2 = by_qos(got, 2)
        eq(sorted(q2), sorted(set(q2)), "QoS 2 exactly once")
        """, **through_proxy)


def test_store_keeps_messages_across_a_power_cut(run, own_mosquitto):
    # One process queues messages with the broker away and dies without a word; a new
    # process on the same store file delivers them all once the broker is there.
    run(prelude=SUB, body="""
    from umqtt.store import FileStore
    c = client("r-store", cls=R, socket_timeout=1)
    c.store = FileStore("q.dat")
    eq(c.store.load(c), 0, "nothing saved yet")
    c.connect(clean_session=False)
    pids = [c.publish(name("r/store"), b"%d" % i, qos=1 + i % 2) for i in range(4)]
    c.publish(name("r/store"), b"q0 is not kept")
    print("pids", pids)
    """, broker=own_mosquitto, env={"MQTT_RUN": "store"})  # the broker is down: 4 queued
    own_mosquitto.start()
    run(prelude=SUB, body="""
    from umqtt.store import FileStore
    t = name("r/store")
    s, inbox = subscriber("r-store-sub", t)
    c = client("r-store", cls=R, socket_timeout=1)
    c.store = FileStore("q.dat")
    eq(c.store.load(c), 4, "the four QoS >= 1 messages")
    c.connect(clean_session=False)
    settle(c, s, inbox, 4)
    in_order(inbox.payloads(), [b"%d" % i for i in range(4)])
    c2 = client("r-store2", cls=R)
    c2.store = FileStore("q.dat")
    eq(c2.store.load(c2), 0, "the store was emptied as they were acknowledged")
    """, broker=own_mosquitto, env={"MQTT_RUN": "store"})


def test_list_subscription_renewed_and_wait_msg_keeps_the_cause(run, own_mosquitto):
    own_mosquitto.start()
    run(prelude=SUB, body="""
    a, b = name("r/la"), name("r/lb")
    c = client("r-list", cls=R, socket_timeout=1)
    c.DELAY_MIN = 20
    inbox = Inbox()
    c.set_callback(inbox)
    c.connect()
    c.subscribe([(a, 1), (b, 2)])
    eq(sorted(c.subs), sorted([(a, 1), (b, 2)]), "remembered one filter at a time")
    until(lambda: not c.things_to_do(), [c], what="SUBACK")
    ask("restart")  # a new broker, without the session
    t0 = ticks_ms()
    while not c.is_conn_issue():  # wait_msg() returns when the link is gone
        c.wait_msg()
        check(ticks_diff(ticks_ms(), t0) < 10000, "wait_msg() noticed")
    check(isinstance(c.conn_issue[0], (OSError, MQTTException)), c.conn_issue)
    eq(c.conn_issue[1], 8, "place: wait_msg")
    check(not (isinstance(c.conn_issue[0], MQTTException) and c.conn_issue[0].args[0] == errno.ECONNOT),
          "the cause, not 'not connected'", c.conn_issue)
    t0 = ticks_ms()
    while c.is_conn_issue():
        c.reconnect()
        sleep_ms(5)
        check(ticks_diff(ticks_ms(), t0) < 10000)
    until(lambda: not c.things_to_do(), [c], what="SUBACK of the renewed subscriptions")
    p = client("r-list-pub")
    p.connect()
    p.publish(a, b"A", qos=1)
    p.publish(b, b"B", qos=1)
    until(lambda: len(inbox.msgs) == 2, [c, p])
    eq(sorted(inbox.payloads()), [b"A", b"B"])
    """, broker=own_mosquitto, actions={
        "restart": lambda: (own_mosquitto.stop(), wipe(own_mosquitto), own_mosquitto.start())})


def test_store_file_survives_a_cut_after_a_fat_rename(run):
    # FAT renames by removing the old file first: a cut between the two leaves only
    # q.dat.tmp. load() finds it there; the next save must not write over that only copy
    # (a cut during that save would leave nothing)
    run(prelude=SUB, body="""
    import os
    from umqtt.store import FileStore
    c = client("r-fat", cls=R, port=1)  # nothing listens there: all queued
    c.store = FileStore("q.dat")
    for i in range(3):
        c.publish("r/fat", b"%d" % i, qos=1)
    os.rename("q.dat", "q.dat.tmp")  # the cut: only the .tmp is left
    c2 = client("r-fat", cls=R, port=1)
    c2.store = FileStore("q.dat")
    eq(c2.store.load(c2), 3, "found in the .tmp")

    class Cut(list):  # the next save (a compaction) dies half way through writing
        def __iter__(self):
            yield self[0]
            raise OSError(5)

    last, ms, held = c2.snapshot()
    try:
        c2.store.save((last, Cut(ms), held))
    except OSError:
        pass
    c3 = client("r-fat", cls=R, port=1)
    c3.store = FileStore("q.dat")
    eq(c3.store.load(c3), 3, "the three messages, after a cut in the next save")
    eq([m[1] for m in c3.msg_to_send], [b"0", b"1", b"2"])
    """)


def test_a_message_the_broker_refuses_is_dropped_and_the_rest_goes(run, tmp_path, certs):
    # mosquitto with max_packet_size 1000 closes the link on a bigger PUBLISH, each time
    # it is re-sent: after DROP_AFTER times it is dropped (reported), and the message
    # behind it is delivered instead of waiting forever
    from brokers import Mosquitto

    m = Mosquitto(str(tmp_path / "small"), certs, max_packet_size=1000).start()
    try:
        run(prelude=SUB, broker=m, body="""
        t = name("r/refused")
        s, inbox = subscriber("r-ref-sub", t)
        c = client("r-ref", cls=R, socket_timeout=1)
        c.DELAY_MIN = 20
        c.DELAY_MAX = 50
        st = Status()
        c.set_callback_status(st)
        c.connect(clean_session=False)
        big = c.publish(t, bytes(2000), qos=1)
        small = c.publish(t, b"small", qos=1)
        t0 = ticks_ms()
        while c.things_to_do() or not inbox.msgs:
            if c.is_conn_issue():
                c.reconnect()
            c.check_msg()
            c.send_queue()
            s.check_msg()
            sleep_ms(2)
            check(ticks_diff(ticks_ms(), t0) < 15000, "the rest delivered", st.log, c.conn_issue)
        eq(inbox.payloads(), [b"small"])
        eq(sorted(st.log), sorted([(big, errno.SDROPPED), (small, errno.SDELIVERED)]))
        c.disconnect()
        s.disconnect()
        """)
    finally:
        m.stop()
