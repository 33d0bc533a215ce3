# umqtt.robust2: keeps every QoS >= 1 message until the broker has it, across outages,
# and never holds up the application's loop. MIT license; see LICENSE.
from .simple2 import MQTTClient as _Client, MQTTException, pid_gen, _encode, _check_qos

try:  # MicroPython
    from time import ticks_ms, ticks_add, ticks_diff
except ImportError:  # CPython
    from ._cpython import const, ticks_ms, ticks_add, ticks_diff
try:
    from random import getrandbits
except ImportError:  # a port without random: no jitter

    def getrandbits(n):
        return 0


try:
    from gc import collect, mem_free  # MicroPython: the queue's default share of the heap
except ImportError:
    mem_free = None

# A kept message is a list [topic, msg, retain, qos, pid, state]; overrides of
# add_msg_to_send(data) written for 2.2.0 read the first four fields.
_TOPIC = const(0)
_MSG = const(1)
_RETAIN = const(2)
_QOS = const(3)
_PID = const(4)
_STATE = const(5)
_QUEUED = const(0)  # states: waiting in msg_to_send
_SENT = const(1)  # in flight, awaiting PUBACK / PUBREC
_RELEASED = const(2)  # QoS 2 past PUBREC: PUBREL sent, awaiting PUBCOMP
_DROPPED = const(3)  # reported SDROPPED, kept no more
# heap a kept message holds besides its topic and payload bytes, on a 32-bit board: the
# record (a list of 6), the payload's bytes object, its place in the queue
_MSG_OVERHEAD = const(96)
_CHUNK = const(16)  # messages per block of the queue
# the link's life
_OFFLINE = const(0)  # no link; the next attempt is due at _due
_CONNECTING = const(1)  # an attempt under way, taken a step further by each call
_ONLINE = const(2)  # CONNACK came; the session was put back
# exceptions by what they mean here (errno codes)
_BUGS = (4, 51)  # a bad argument: raised to the caller, not an outage
_REFUSALS = (21, 22, 24, 25)  # CONNACK refusals that retrying will not change
_OURS = (7, 28, 30, 53)  # link ends we caused or detected: DROP_AFTER does not count them
_DEAD = (7, 53)  # the link was found dead: is_keepalive() is False
_FAILURES = (OSError, MQTTException, ValueError)  # what a failing link raises (MicroPython's
# TLS: a ValueError for a certificate refused)
_ECONNOT = const(28)
_ENOACK = const(53)
_SUBSCRIBE = const(0x82)
_UNSUBSCRIBE = const(0xA2)
_PUBREL = const(0x62)
_STIMEOUT = const(0)
_SDROPPED = const(5)


def _send_filters(c, op, filters, pid):
    from .subscriptions import send

    return send(c, op, filters, pid)


def topic_filters(topic, qos=0):
    from .subscriptions import topic_filters

    return topic_filters(topic, qos)


def _cost(m):
    # the heap a queued message holds
    return len(m[_TOPIC]) + len(m[_MSG]) + _MSG_OVERHEAD


def _default_budget():
    # MSG_QUEUE_BYTES when the class leaves it None: a fifth of the free heap, within
    # 4 KB and 64 KB (CPython: 256 KB)
    if not mem_free:
        return 1 << 18
    collect()
    return min(max(mem_free() // 5, 4096), 65536)


class MessageQueue:
    """Messages waiting to be sent, oldest first. Adding at the end and taking the first
    cost the same however many wait: they are kept in blocks of _CHUNK, each allocated
    whole and never resized (a resize frees memory, and MicroPython's allocator then
    searches from the freed place over everything allocated since: a cost that grows
    with the queue), and no large block is needed (a fragmented heap may have none).
    It has the list methods that add_msg_to_send() overrides written for 2.2.0 use:
    append(), pop(0), insert(0, m), remove(m), len(), iteration and [i]; and bytes, the
    heap its messages hold (topic, payload and OVERHEAD each)."""

    OVERHEAD = _MSG_OVERHEAD  # heap a message holds besides its topic and payload

    def __init__(self):
        self._head = self._tail = self._block()  # a block: [the next block, message, ...]
        self._first = 1  # where the head block's first message is
        self._end = 1  # where the tail block's next message goes
        self._count = 0
        self.bytes = 0
        self.qos0 = 0  # how many are QoS 0

    def _block(self):
        return [None] * (_CHUNK + 1)

    def _added(self, m, n):
        self._count += n
        self.bytes += n * _cost(m)
        if not m[_QOS]:
            self.qos0 += n

    def __len__(self):
        return self._count

    def __iter__(self):
        block = self._head
        i = self._first
        while True:
            end = self._end if block is self._tail else _CHUNK + 1
            while i < end:
                yield block[i]
                i += 1
            if block is self._tail:
                return
            block = block[0]
            i = 1

    def __getitem__(self, i):
        if i < 0:
            i += self._count
        if 0 <= i < self._count:
            for m in self:
                if not i:
                    return m
                i -= 1
        raise IndexError

    def append(self, m):
        if self._end > _CHUNK:  # the tail block is full
            block = self._block()
            self._tail[0] = block
            self._tail = block
            self._end = 1
        self._tail[self._end] = m
        self._end += 1
        self._added(m, 1)

    def insert(self, i, m):
        if i:  # (only the front is cheap; the rest as a list would)
            raise ValueError
        if not self._count:
            return self.append(m)
        if self._first == 1:  # a block in front, filled from its end
            block = self._block()
            block[0] = self._head
            self._head = block
            self._first = _CHUNK + 1
        self._first -= 1
        self._head[self._first] = m
        self._added(m, 1)

    def pop(self, i=0):
        if not self._count:
            raise IndexError
        if i:
            m = self[i]
            self.remove(m)
            return m
        head = self._head
        m = head[self._first]
        head[self._first] = None
        self._first += 1
        if head is self._tail:
            if self._first == self._end:  # empty: the block is used again
                self._first = self._end = 1
        elif self._first > _CHUNK:  # the block is used up
            self._head = head[0]
            self._first = 1
        self._added(m, -1)
        return m

    def remove(self, m):
        # (rare: the policy's QoS 0 drop, an override's; it takes each message out once
        # and puts back all but m)
        found = False
        for k in range(self._count):
            x = self.pop(0)
            if not found and (x is m or x == m):
                found = True
            else:
                self.append(x)
        if not found:
            raise ValueError

    def __eq__(self, other):
        return list(self) == list(other)


class _Kept:
    """The messages a snapshot holds, in send order: those in flight, then the QoS >= 1
    messages queued. A view, not a copy: a store that compacts 1,000 messages on a
    small heap needs no list of 1,000 (the store only reads them)."""

    def __init__(self, c):
        self.c = c

    def __iter__(self):
        for m in self.c.inflight:
            yield m
        for m in self.c.msg_to_send:
            if m[_QOS] and m[_STATE] != _DROPPED:
                yield m

    def __len__(self):
        n = 0
        for m in self:
            n += 1
        return n


class MQTTClient(_Client):
    """simple2's client, made to survive outages: each call turns a connection failure
    into conn_issue = (exception, place) instead of raising it; QoS >= 1 messages are
    kept until their flow completes, and re-sent after a reconnect; reconnect() never
    waits (see README)."""

    DEBUG = False  # print connection issues and dropped messages
    KEEP_QOS0 = True  # queue QoS 0 messages that cannot be sent now
    NO_QUEUE_DUPS = False  # True: a message equal to a queued one is dropped (reported)
    MSG_QUEUE_MAX = None  # most messages waiting to be sent; None: no count, only ...
    MSG_QUEUE_BYTES = None  # ... the heap they hold; None: a fifth of the free heap when
    # the client is built, within 4 KB and 64 KB (CPython: 256 KB)
    CONFIRM_QUEUE_MAX = 20  # in-flight window: QoS >= 1 messages awaiting their answer
    RESUBSCRIBE = True  # renew subscriptions when the broker lost the session
    DROP_AFTER = 3  # the broker closed the link this many times in a row right after the
    # same message was re-sent: it refuses it (too big, not allowed): dropped, SDROPPED
    CONNECT_WAIT = 10  # ms reconnect() may wait for the network in one call
    HOLD_MS = 1000  # ms a new link holds before check_msg() sends the queue by itself
    DELAY_MIN = 500  # ms before the second connection attempt; doubles up to
    DELAY_MAX = 60000  # ms, with jitter: see delay()
    PLACES = ("?", "connect", "publish", "subscribe", "reconnect", "sendqueue", "disconnect",
              "ping", "wait_msg", "keepalive", "check_msg")  # conn_issue[1] names one
    conn_issue = None  # (exception, place): see PLACES
    store = None  # where messages survive a power cut: see umqtt.store

    def __init__(self, *args, **kwargs):
        _Client.__init__(self, *args, **kwargs)
        self.subs = []  # (filter, qos) to renew on a new session
        self.msg_to_send = MessageQueue()  # messages not sent yet, oldest first
        self.inflight = []  # messages sent and unanswered, in send order
        self.sub_to_send = []  # (op, [(filter, qos)]) to SUBSCRIBE (op 0x82) or UNSUBSCRIBE
        self.sub_to_confirm = {}  # pid -> (op, [(filter, qos)]) awaiting SUBACK / UNSUBACK
        self._state = _OFFLINE
        self._place = 1  # where the attempt under way was started (PLACES)
        self._fails = 0  # attempts since a link last carried a packet
        self._due = 0  # ticks_ms when the next attempt may start ...
        self._wait_ms = 0  # ... delay() ms after the failure
        self._up_at = 0  # ticks_ms of the last CONNACK
        self._renew = False  # the remembered subscriptions are to be renewed: a new
        # session, or one remembered while offline; resubscribe() does it once online
        self._lastpid = 0  # the last pid drawn (kept by the store)
        self._draws = 0  # pids drawn since the queue was last empty
        self._budget = self.MSG_QUEUE_BYTES or _default_budget()
        # DROP_AFTER: the pid re-sent first on the last link, how often in a row that
        # link was then closed by the other side with nothing received, and what
        # ended the last link if no packet had come on it
        self._resent_first = 0
        self._refusals = 0
        self._last_end = None
        self._reading_in = 10  # the place of a failure met reading: check_msg, or wait_msg

    # -- the hooks simple2 calls: each flow's outcome

    def on_ack(self, pid, status):
        for m in self.inflight:
            if m[_PID] == pid:
                self.inflight.remove(m)
                # (QoS 1: left to the next flush; a cut before it sends it once more, which
                # QoS 1 allows. QoS 2: at once, else a cut would deliver it twice)
                self._keep("remove", pid, m[_QOS] == 2)
                self.cbstat(pid, status)
                if self.msg_to_send._count:  # room in the window now
                    self.send_queue()
                return
        self.sub_to_confirm.pop(pid, None)  # (a SUBACK reports each filter: the first ends it)
        self.cbstat(pid, status)

    def on_timeout(self, pid):
        if self._find(pid) or pid in self.sub_to_confirm:
            # no answer in time: kept, sent again with its pid on a new link; this one
            # is suspect (said once, for all flows)
            if self.sock:
                self._close()
                self._issue(MQTTException(_ENOACK), 10)
            return
        self.cbstat(pid, _STIMEOUT)

    def on_pubrec(self, pid):
        m = self._find(pid)
        if m and m[_STATE] != _RELEASED:  # from now on PUBREL, never the message again,
            m[_STATE] = _RELEASED  # also after a power cut
            self._keep("state", pid, _RELEASED)

    def on_qos2(self, pid, held):
        self._keep("hold" if held else "release", pid)  # before the answer: delivered once

    def on_connect(self, session_present):
        # put our side of the session back [MQTT-4.4.0-1]
        self._state = _ONLINE
        # a packet after CONNACK shows the link holds (_issue() then restarts the
        # backoff): CONNACK's time is made 1 ms older, so a packet in the same ms counts
        self._up_at = self.last_cpacket
        self.last_cpacket = ticks_add(self._up_at, -1)
        ended = self._last_end  # what ended the last link, if nothing had come on it
        self._last_end = self.conn_issue = None
        self.rcv_pids.clear()
        if not session_present:  # a new session: nothing is past PUBREC
            for m in self.inflight:
                if m[_STATE] == _RELEASED:
                    m[_STATE] = _SENT
                    self._keep("state", m[_PID], _SENT)  # before anything goes out
            self._renew = True  # until resubscribe() has sent them
        dropped = self._refused_message(ended)
        if session_present:  # first, in their order [MQTT-4.4.0-1]
            self._resend_inflight(True)
        for pid, s in self._pending():  # with the pid subscribe() returned
            if self.sock:
                self._try(self._place, _send_filters, s[0], s[1], pid)
        self._send_subscriptions()
        if self.RESUBSCRIBE:
            self.resubscribe()
        if not session_present:  # published anew once the subscriptions are back, so
            self._resend_inflight(False)  # that replies on them are not missed
        # (the queue waits for send_queue(), the next publish(), an answer, or HOLD_MS:
        # a program may subscribe first, as 2.2.0's do)
        if dropped:
            self._drop(dropped, "the broker closed the link", self.DROP_AFTER, "times right after it (%s())" % self.PLACES[self._place])

    def on_tick(self, now):
        # what waited while offline goes out once the link has held for HOLD_MS, if the
        # application has not sent it first (send_queue(), or publish(): a program may
        # subscribe before, as 2.2.0's do)
        if (self.msg_to_send._count or self.sub_to_send) and ticks_diff(now, self._up_at) >= self.HOLD_MS:
            self.send_queue()

    def on_link_error(self, e):
        return self._issue(e, self._place if self._state == _CONNECTING else self._reading_in)

    def _refused_message(self, ended):
        # DROP_AFTER: the message re-sent first, if the links since closed right after
        # it, with nothing received, DROP_AFTER times in a row: taken out, returned
        m = self.inflight and self.inflight[0]
        if m and m[_STATE] != _RELEASED and m[_PID] == self._resent_first and ended:
            code = ended.args[0] if isinstance(ended, MQTTException) else None
            if code not in _OURS:
                self._refusals += 1
                if self._refusals >= self.DROP_AFTER > 0:
                    self.inflight.remove(m)
                    self._keep("remove", m[_PID])
                    self._refusals = 0
                    self._resent_first = self.inflight and self.inflight[0][_PID]
                    return m
                return None
        self._refusals = 0
        self._resent_first = m and m[_PID]
        return None

    def _resend_inflight(self, session_present):
        for m in self.inflight:
            if not self.sock:  # failed again: the rest waits for the next connection
                break
            if m[_STATE] == _RELEASED:  # past PUBREC in the session the broker kept
                self._track(m[_PID])
                self._try(self._place, _Client._send_pid, _PUBREL, m[_PID])
            else:  # DUP=1 with its pid if the broker kept the session, else anew
                self._try(self._place, _Client.publish, m[0], m[1], m[2], m[3], session_present, m[_PID])

    def _find(self, pid):
        for m in self.inflight:
            if m[_PID] == pid:
                return m

    # -- connection

    def _issue(self, e, place):
        # The one place that decides what an exception means. With the socket closed it
        # was a connection failure: kept in conn_issue, the next attempt after delay().
        # With the socket open it was something else (a bad argument, an error raised by
        # a callback): the caller's to see. "Not connected" keeps the outage's cause.
        code = e.args[0] if isinstance(e, MQTTException) else None
        if code == _ECONNOT and self._state == _CONNECTING:  # (ping() before CONNACK)
            return None
        if self.sock or code in _BUGS:
            raise e
        if self._state == _ONLINE and ticks_diff(self.last_cpacket, self._up_at) >= 0:
            self._fails = 0  # the link carried packets: the backoff starts afresh
        if self._state != _OFFLINE:  # a link or an attempt ended
            if self.conn_issue is None:  # (for DROP_AFTER: _fails is 0 once a packet came)
                self._last_end = self._fails and e
            if code in _REFUSALS:  # retrying will not change it: the longest wait
                self._fails = 16
            # the first attempt after a link that was up goes at once; after that, and
            # after a failed attempt, delay() (a broker that accepts and drops the
            # client at once is not hammered: links without a packet count as attempts)
            once = self._state == _ONLINE and self._fails <= 1
            self._wait_ms = 0 if once else int(self.delay(self._fails))
            self._due = ticks_add(ticks_ms(), self._wait_ms)
            self.forget_address()  # resolved again for the next attempt
            self._state = _OFFLINE
        elif code == _ECONNOT and self.conn_issue:
            return None
        self.conn_issue = (e, place)
        self.log()  # once per failure, not at every is_conn_issue()
        return None

    def _try(self, place, f, *args):
        # f(self, *args), a connection failure kept in conn_issue; None then
        try:
            return f(self, *args)
        except _FAILURES as e:
            return self._issue(e, place)

    def delay(self, fails):
        """ms to wait after `fails` failed attempts in a row: exponential, capped, with
        jitter so that devices do not come back in step. Override to change the policy."""
        d = min(self.DELAY_MAX, self.DELAY_MIN << min(fails, 16))
        return d - (d * getrandbits(8) >> 9)

    def connect(self, clean_session=True):
        """Connects, waiting for CONNACK (socket_timeout at most), then puts the session
        back. Returns the session-present flag, or None (conn_issue says why)."""
        self._fails += 1
        self._place = 1
        try:
            _Client.connect(self, clean_session)
        except _FAILURES as e:
            if not self.sock:  # the attempt failed (else _issue raises e)
                self._state = _CONNECTING
            return self._issue(e, 1)
        return self.session_present

    def reconnect(self):
        """Never waits. Starts a connection attempt when the last failure's delay() is
        over (else returns None at once), or takes the attempt under way a step
        further. Returns the session-present flag from the call that got CONNACK,
        else None. The server's name is resolved once per attempt, the one step that
        may block."""
        if self._state != _CONNECTING:
            # (a wait longer than the one set means the ticks went round: due long ago)
            if self._fails and 0 < ticks_diff(self._due, ticks_ms()) <= self._wait_ms:
                return None
            self._fails += 1
            self._place = 4
            self._state = _CONNECTING
            try:
                _Client.start_connect(self, False)
            except _FAILURES as e:
                return self._issue(e, 4)
        # a network that answers at once (a LAN) is connected within this call, as by
        # 2.2.0's reconnect(); any other waits for the next call
        t = ticks_ms()
        while _Client.check_msg(self) != 0x20:
            left = self.CONNECT_WAIT - ticks_diff(ticks_ms(), t)
            if left <= 0 or self._state != _CONNECTING:
                return None
            self._link_wait(left)
        return self.session_present

    def _pending(self):
        # the unanswered (UN)SUBSCRIBEs, oldest first: pids are drawn in turn, and a
        # dict keeps no order on MicroPython
        return sorted(self.sub_to_confirm.items(), key=lambda i: -((self._lastpid - i[0]) % 65535))

    def resubscribe(self):
        """Every remembered subscription, in one SUBSCRIBE, once per new session; while
        offline nothing: the next connection renews them."""
        if self._renew and self._state == _ONLINE:
            self._renew = False
            left = []  # what the unanswered (UN)SUBSCRIBEs, in order, leave subscribed:
            for pid, s in self._pending():  # not asked for twice
                for f, q in s[1]:
                    left = [x for x in left if x[0] != f]
                    if s[0] == _SUBSCRIBE:
                        left.append((f, q))
            fs = [s for s in topic_filters(self.subs) if s not in left] if self.subs else []
            if fs:
                self._subscribe_now((_SUBSCRIBE, fs))

    def is_conn_issue(self):
        return self.conn_issue is not None

    def is_connected(self):
        return self._state == _ONLINE

    def is_keepalive(self):
        """False once the link was found dead (no PINGRESP, or no answer in time)."""
        e = self.conn_issue
        return not (e and isinstance(e[0], MQTTException) and e[0].args[0] in _DEAD)

    def log(self, *what):
        if self.DEBUG:
            if what:
                print("MQTT:", *what)
            else:
                e = self.conn_issue
                print("MQTT (%s):" % self.PLACES[e[1]], repr(e[0]))

    def disconnect(self):
        self._try(6, _Client.disconnect)
        self._state = _OFFLINE
        self._fails = 0  # (an application's disconnect: no backoff before the next)

    def ping(self):
        try:  # (not through _try: its *args would allocate at every keep-alive ping)
            _Client.ping(self)
        except _FAILURES as e:
            self._issue(e, 7)

    def wait_msg(self):
        self._reading_in = 8
        try:
            return _Client.wait_msg(self)
        finally:
            self._reading_in = 10

    def things_to_do(self):
        """0: everything sent and answered, nothing queued: safe to sleep."""
        return len(self.msg_to_send) + len(self.inflight) + len(self.sub_to_send) + len(self.sub_to_confirm)

    # -- messages

    def publish(self, topic, msg, retain=False, qos=0):
        """Sends now when it can, else queues; a QoS >= 1 message is kept until its flow
        completes. Returns the pid of a QoS >= 1 message (sent or queued), else None."""
        if self._state == _ONLINE and self.msg_to_send._count:  # the backlog goes first
            self.send_queue()
        online = self._state == _ONLINE and not self.msg_to_send._count
        if not qos and online:
            try:  # the common QoS 0 case, without allocating
                return _Client.publish(self, topic, msg, retain)
            except _FAILURES as e:
                self._issue(e, 2)  # (kept below, if KEEP_QOS0)
        _check_qos(qos)
        pid = self._newpid() if qos else None
        try:  # a message the heap cannot hold is dropped and reported, never raised
            t = self._publish_topic(topic, qos)
            msg = _encode(msg, 268435451 - len(t))
            if type(msg) is not bytes:  # a kept payload is a copy: the caller may reuse its buffer
                msg = bytes(msg)
            m = [t, msg, bool(retain), qos, pid, _QUEUED]
        except MemoryError:
            self._drop((topic, b"", retain, qos, pid), "no memory to keep it (publish())")
            return pid
        if online and qos and len(self.inflight) < self.CONFIRM_QUEUE_MAX:
            m[_STATE] = _SENT  # (new: the store adds it)
            self._send(m, 2)
            return pid
        if not (qos or self.KEEP_QOS0):  # not sent, not kept: reported
            self._drop(m, "offline, and KEEP_QOS0 is False (publish())")
        elif self.NO_QUEUE_DUPS and self._queued(m):
            self._drop(m, "NO_QUEUE_DUPS: equal to a queued message (publish())")
        else:
            try:
                self.add_msg_to_send(m)
            except MemoryError:
                if m in self.msg_to_send:
                    self.msg_to_send.remove(m)
                self._drop(m, "no memory to queue it (publish())")
                return pid
            if qos and m[_STATE] == _QUEUED:  # (not if the policy dropped it at once)
                self._keep("add", m)
        return pid

    def _queued(self, m):
        for q in self.msg_to_send:
            if q[:4] == m[:4]:
                return True
        return False

    def _newpid(self):
        # a pid no flow uses: in flight, kept for a re-send, or promised to a queued
        # message. Queued messages got their pids in turn since the queue was last
        # empty, so a new one can only meet one of theirs after 65535 more
        q = self.msg_to_send
        if not q._count:
            self._draws = 0  # pids drawn since the queue was last empty
        while True:
            p = next(self.newpid)
            self._draws += 1
            if p in self.rcv_pids or p in self.sub_to_confirm or self._find(p):
                continue
            if self._draws > 65535 and [m for m in q if m[_PID] == p]:
                continue
            self._lastpid = p
            return p

    def _send(self, m, place=5):
        # Publish m now. A QoS >= 1 message enters the in-flight list first: if the write
        # fails it is re-sent after the reconnect. False: a QoS 0 message was not sent.
        if m[_QOS]:
            self.inflight.append(m)
            if m[_STATE] != _QUEUED:  # new: kept before it goes out (its pid is not reused)
                self._keep("add", m)
            # (queued -> in flight is not stored: restored as queued, a message is sent
            # again with its pid, which a broker that has it takes as a repeat)
            m[_STATE] = _SENT
        self._try(place, _Client.publish, m[0], m[1], m[2], m[3], False, m[4])
        return m[_QOS] or self.sock is not None

    def add_msg_to_send(self, data):
        """The queue policy; override to change it. data is a message, whose first four
        fields are (topic, msg, retain, qos), then pid and state. Appends it, then while
        the queue is over MSG_QUEUE_MAX messages or MSG_QUEUE_BYTES bytes of heap drops
        the oldest QoS 0 message, or else the oldest one. Every drop is reported:
        status SDROPPED."""
        q = self.msg_to_send
        q.append(data)
        if q.bytes > (self.MSG_QUEUE_BYTES or self._budget) or self.MSG_QUEUE_MAX is not None:
            self._trim_queue()

    def _trim_queue(self):
        q = self.msg_to_send
        most = self.MSG_QUEUE_MAX
        budget = self.MSG_QUEUE_BYTES or self._budget
        while (most is not None and len(q) > most) or q.bytes > budget:
            over = "MSG_QUEUE_MAX" if most is not None and len(q) > most else "MSG_QUEUE_BYTES"
            if q.qos0:  # the oldest QoS 0 message goes first
                for m in q:
                    if not m[_QOS]:
                        break
                q.remove(m)
            else:
                m = q.pop(0)
            if m[_QOS]:
                self._keep("remove", m[_PID])
            self._drop(m, "queue over", over, "=", most if over == "MSG_QUEUE_MAX" else budget, "(publish())")

    def _drop(self, m, *why):
        if type(m) is list:
            m[_STATE] = _DROPPED
        self.log("dropped message", m[_PID], *why)
        self.cbstat(m[_PID] or 0, _SDROPPED)

    def _keep(self, event, *args):
        # tell the store, if any (umqtt.store): a failure is logged, the message stays in
        # RAM, and the store recovers on a later event
        s = self.store
        if s:
            try:
                f = getattr(s, event, None)
                if event == "flush":
                    if f:
                        f()
                elif f:
                    f(self, *args)
                else:  # a store with only save(): the whole snapshot() each time
                    s.save(self.snapshot())
            except Exception as e:  # (OSError, MemoryError; a store's own bug too)
                self.log("store failed", repr(e))

    def snapshot(self):
        """What the store saves: (the last pid drawn, the kept messages in send order as
        [topic, msg, retain, qos, pid, state], the incoming QoS 2 pids held)."""
        return self._lastpid, _Kept(self), sorted(self._qos2_in)

    def restore(self, last_pid, messages, held):
        """Puts back what snapshot() gave (the store calls it from load())."""
        self._lastpid = last_pid
        self.newpid = pid_gen(last_pid)
        self._draws = 0
        self.inflight = []
        self.msg_to_send = MessageQueue()
        for m in messages:
            m = list(m[:6])
            if m[_STATE] == _QUEUED:
                self.msg_to_send.append(m)
            else:
                self.inflight.append(m)
        self._qos2_in.update(held)

    def send_queue(self):
        """Sends queued messages, oldest first, while the in-flight window has room (at
        most CONFIRM_QUEUE_MAX messages a call), then queued subscriptions. True when
        both queues are empty."""
        q = self.msg_to_send
        n = self.CONFIRM_QUEUE_MAX  # (QoS 0 included: a call's work is bounded)
        while q._count and self._state == _ONLINE and len(self.inflight) < self.CONFIRM_QUEUE_MAX and n:
            m = q.pop(0)  # (out of the queue before _send keeps it in flight)
            if not self._send(m):  # a QoS 0 message not sent: still the first
                q.insert(0, m)
                break
            n -= 1
        self._send_subscriptions()
        if self.store and not self.inflight:  # (acknowledgements written lazily)
            self._keep("flush")
        return not (q._count or self.sub_to_send)

    def _send_subscriptions(self):
        # the queued (UN)SUBSCRIBEs, in order; one that fails stays first
        q = self.sub_to_send
        while q and self._state == _ONLINE:
            p = self._try(3, _send_filters, q[0][0], q[0][1], self._newpid())
            if not p:
                return
            self.sub_to_confirm[p] = q.pop(0)

    # -- subscriptions

    def subscribe(self, topic, qos=0, resubscribe=True):
        fs = topic_filters(topic, qos)
        if self.RESUBSCRIBE and resubscribe:
            for f in topic if isinstance(topic, list) else [topic]:  # remembered one
                f = f if isinstance(f, tuple) else (f, qos)  # filter at a time, as given
                self._forget(topic_filters(f[0])[0][0])
                self.subs.append(f)
            if self._state != _ONLINE:  # not queued: the next connection renews all
                self._renew = True
                return None
        return self._subscribe_now((_SUBSCRIBE, fs))

    def unsubscribe(self, topic):
        fs = topic_filters(topic)
        for f in fs:
            self._forget(f[0])
        return self._subscribe_now((_UNSUBSCRIBE, fs))

    def _forget(self, f):
        # drop filter f (bytes) from the remembered subscriptions (str or bytes alike)
        self.subs = [s for s in self.subs if bytes(_encode(s[0])) != f]

    def _subscribe_now(self, s):
        # s = (op, [(filter, qos)]): SUBSCRIBE or UNSUBSCRIBE now, else once connected
        p = None
        if self._state == _ONLINE:
            p = self._try(3, _send_filters, s[0], s[1], self._newpid())
        if p:
            self.sub_to_confirm[p] = s
        else:
            self.sub_to_send.append(s)
        return p
