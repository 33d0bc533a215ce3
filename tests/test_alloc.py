"""Allocation-free hot paths, proved with micropython.heap_lock() on the unix port:
any heap allocation while the heap is locked raises MemoryError."""


import pytest


@pytest.fixture
def mp_run(request, tmp_path):
    # heap_lock() and gc.mem_free() are MicroPython's: these run on the unix port only
    from conftest import Runner

    return Runner("micropython", tmp_path, request)


@pytest.mark.parametrize("module", ["simple2", "robust2"])
def test_idle_check_msg_and_qos0_publish_allocate_nothing(mp_run, module):
    mp_run(prelude="from umqtt.%s import MQTTClient as C" % module, body="""
    c = client("alloc", cls=C, keepalive=60)
    inbox = Inbox()
    c.set_callback(inbox)
    c.connect()
    t = name("alloc").encode()
    c.subscribe(t, 0)
    until(lambda: c.check_msg() is None and not c.rcv_pids, [c], what="SUBACK")
    msg = b"x" * 40
    def locked():  # in a function: no global (a dict that may grow) is written
        for i in range(1000):
            c.check_msg()       # idle: nothing has arrived
        for i in range(100):
            c.publish(t, msg)   # QoS 0, bytes topic, bytes payload
    heap_locked(locked)
    until(lambda: len(inbox.msgs) == 100, [c], what="the 100 messages")
    eq(inbox.payloads(), [msg] * 100)
    c.disconnect()
    """)


def test_robust2_qos1_publish_and_its_puback_allocate_nothing_once_warm(mp_run):
    # robust2 keeps each QoS 1 message in a record until its PUBACK; an acknowledged
    # record is kept for the next message, so steady publishing allocates none
    mp_run(prelude="from umqtt.robust2 import MQTTClient as C", body="""
    c = client("alloc3", cls=C, keepalive=60)
    delivered = [0, 0]  # SDELIVERED, any other status (counted without allocating)
    def st(pid, status):
        delivered[0 if status == 1 else 1] += 1
    c.set_callback_status(st)
    c.connect()
    t = name("alloc3").encode()
    msg = b"x" * 32
    c.publish(t, msg, qos=1)  # warm: one record made, then kept for reuse
    until(lambda: not c.inflight, [c], what="the first PUBACK")
    spins = [0]
    def locked():  # in a function: no global (a dict that may grow) is written
        for i in range(50):
            c.publish(t, msg, qos=1)
            k = 0
            while c.inflight and k < 1000000:  # its PUBACK, read and handled
                c.check_msg()
                k += 1
            spins[0] = k
    heap_locked(locked)
    check(not c.inflight and spins[0] < 1000000, "PUBACKs", spins[0])
    eq(delivered, [51, 0])
    c.disconnect()
    """)


def test_received_message_costs_at_most_128_bytes(mp_run):
    mp_run("""
    import micropython, gc
    c = client("alloc2")
    got = [0]
    def cb(topic, msg, retained, dup):
        got[0] += 1
    c.set_callback(cb)
    c.connect()
    t = name("alloc2").encode()
    c.subscribe(t, 0)
    until(lambda: c.check_msg() is None and not c.rcv_pids, [c], what="SUBACK")
    p = client("alloc2pub")
    st = Status()
    p.set_callback_status(st)
    p.connect()
    for i in range(50):
        p.publish(t, b"payload%02d" % i, qos=1)
    until(lambda: len(st.log) == 50, [p], what="the broker has them all")
    until(lambda: got[0], [c])  # the first one caches the topic; measure the rest
    n0 = got[0]
    gc.collect()
    f0 = gc.mem_free()
    gc.disable()
    while got[0] < 50:
        c.check_msg()
    used = f0 - gc.mem_free()
    gc.enable()
    per = used // (got[0] - n0)
    print("heap bytes per received message:", per)
    check(per <= 128, "per message", per)
    c.disconnect()
    """)
