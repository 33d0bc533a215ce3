# umqtt.robust2: keeps every QoS >= 1 message until the broker has it, across outages,
# and never holds up the application's loop. MIT license; see LICENSE.
#
# What a device that only publishes and receives never runs lives in modules imported on
# first use: umqtt.resubscribe (subscribe(), unsubscribe(), their renewal) and
# umqtt.snapshot (snapshot(), restore(), the store's events; umqtt.store itself only
# calls the client's public methods). Neither imports this module: no import circle.
#
# Lookups are the main cost here: MicroPython finds self.name by searching the
# instance's attributes, then this class's dict, then simple2's, and a search that
# misses a nearly full table scans most of it. So the client has few attributes of its
# own, this class few entries, and helpers on the hot paths are module functions. The
# builtins of the hot paths are names of this module, as in simple2.
from .simple2 import MQTTClient as _Client, MQTTException, _encode, _check_qos, _track, _send_pid, _send_publish, _publish_topic
from builtins import bytes, len, next, type

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

# A kept message is a list [topic, msg, retain, qos, pid, state, next]; overrides of
# add_msg_to_send(data) written for 2.2.0 read the first four fields. next links a
# queued message to the one queued after it (None otherwise): the queue needs no
# memory of its own per message, and a 7th field costs no heap (a list's items are
# allocated in 16-byte blocks on a 32-bit board: 6 or 7 take two).
_TOPIC = const(0)
_MSG = const(1)
_RETAIN = const(2)
_QOS = const(3)
_PID = const(4)
_STATE = const(5)
_NEXT = const(6)
_QUEUED = const(0)  # states: waiting in msg_to_send
_SENT = const(1)  # in flight, awaiting PUBACK / PUBREC
_RELEASED = const(2)  # QoS 2 past PUBREC: PUBREL sent, awaiting PUBCOMP
_DROPPED = const(3)  # reported SDROPPED, kept no more
# heap a kept message holds besides its topic and payload bytes, measured on a 32-bit
# MicroPython build: gc.mem_alloc() grew by 80 bytes per QoS 1 message queued offline
# (1-byte topic and payload, 200 messages), 78 besides those 2 bytes: the record (a list
# of 7: 16 + 32 bytes) and the payload's bytes object (16 + its data in 16-byte blocks).
# The topic's object is shared with the message before when the topic is the same; a
# topic that changes at each message adds its own (32 bytes for 1 byte)
_MSG_OVERHEAD = const(78)
_SPARES_MOST = const(4)  # records kept for reuse (48 bytes each on a 32-bit board)
_MAX_REMAINING = const(268435455)  # what 4 bytes of Remaining Length can say
_TOPIC_AND_PAYLOAD_MOST = const(_MAX_REMAINING - 4)  # in a PUBLISH with a pid
# the link's life
_OFFLINE = const(0)  # no link; the next attempt is due at _when
_CONNECTING = const(1)  # an attempt under way, taken a step further by each call
_ONLINE = const(2)  # CONNACK came (at _when); the session was put back
# places (PLACES) of failures
_IN_PUBLISH = const(2)
_IN_SENDQUEUE = const(5)
_IN_CHECK_MSG = const(10)
# exceptions by what they mean here (errno codes)
_BUGS = (4, 51)  # a bad argument: raised to the caller, not an outage
_REFUSALS = (21, 22, 24, 25)  # CONNACK refusals that retrying will not change
_OURS = (7, 28, 30, 53)  # link ends we caused or detected: DROP_AFTER does not count them
_DEAD = (7, 53)  # the link was found dead: is_keepalive() is False
_FAILURES = (OSError, MQTTException, ValueError)  # what a failing link raises (MicroPython's
# TLS: a ValueError for a certificate refused)
_ECONNOT = const(28)
_ENOACK = const(53)
_PUBLISH = const(0x30)  # PUBLISH and its flags
_RETAIN_FLAG = const(0x01)
_DUP_FLAG = const(0x08)
_PUBREL = const(0x62)
_STIMEOUT = const(0)
_SDROPPED = const(5)
# DROP_AFTER's watch, a list: the pid re-sent first on the last link, how often in a row
# a link was then closed by the other side with nothing received, and what ended the
# last link if no packet had come on it
_WATCH_PID = const(0)
_WATCH_COUNT = const(1)
_WATCH_END = const(2)


class MessageQueue:
    """Messages waiting to be sent, oldest first, each record linked to the next by its
    last field: adding at either end and taking the first cost the same however many
    wait, and no large block of memory is needed (a fragmented heap may have none).
    It has the list methods that add_msg_to_send() overrides written for 2.2.0 use:
    append(), pop(0), insert(0, m), remove(m), len(), iteration and [i]; bytes, the
    heap its messages hold (topic, payload and OVERHEAD each), and budget, the bound on
    bytes when MSG_QUEUE_BYTES is None."""

    OVERHEAD = _MSG_OVERHEAD  # heap a message holds besides its topic and payload

    def __init__(self, budget):
        self._first = self._last = None
        self._count = 0
        self.bytes = 0
        self.qos0 = 0  # how many are QoS 0
        self.budget = budget
        self.pids_drawn = 0  # pids drawn since the queue was last empty (see _new_pid)
        # records of acknowledged messages, linked like the queue, for the next
        # messages: a device that publishes steadily allocates no record
        self.spare = None
        self.spares = 0

    def _counted(self, m, n):
        self._count += n
        self.bytes += n * (len(m[_TOPIC]) + len(m[_MSG]) + _MSG_OVERHEAD)
        if not m[_QOS]:
            self.qos0 += n

    def __len__(self):
        return self._count

    def __iter__(self):
        m = self._first
        while m:
            after = m[_NEXT]  # (the caller may remove m)
            yield m
            m = after

    def __getitem__(self, i):
        if i < 0:
            i += self._count
        if 0 <= i < self._count:
            for m in self:
                if not i:
                    return m
                i -= 1
        raise IndexError

    def __eq__(self, other):
        return list(self) == list(other)

    def append(self, m):
        m[_NEXT] = None
        if self._last:
            self._last[_NEXT] = m
        else:
            self._first = m
        self._last = m
        self._counted(m, 1)

    def insert(self, i, m):
        if i:  # (only the front is cheap; the rest as a list would)
            raise ValueError
        m[_NEXT] = self._first
        self._first = m
        if not self._last:
            self._last = m
        self._counted(m, 1)

    def pop(self, i=0):
        if i:
            m = self[i]
            self.remove(m)
            return m
        m = self._first
        if not m:
            raise IndexError
        self._first = m[_NEXT]
        if not self._first:
            self._last = None
        m[_NEXT] = None
        self._counted(m, -1)
        return m

    def remove(self, m):
        # (rare: the policy's QoS 0 drop, an override's)
        before = None
        x = self._first
        while x is not m:
            if not x:
                raise ValueError
            before = x
            x = x[_NEXT]
        if before:
            before[_NEXT] = m[_NEXT]
        else:
            self._first = m[_NEXT]
        if self._last is m:
            self._last = before
        m[_NEXT] = None
        self._counted(m, -1)


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
    store = None  # where messages survive a power cut: see umqtt.store
    conn_issue = None  # (exception, place): see PLACES
    _renew = False  # the remembered subscriptions are to be renewed: a new session, or
    # one remembered while offline; resubscribe() does it once online

    def __init__(self, *args, **kwargs):
        _Client.__init__(self, *args, **kwargs)
        budget = self.MSG_QUEUE_BYTES
        if not budget:  # a fifth of the free heap, within 4 KB and 64 KB (CPython: 256 KB)
            if mem_free:
                collect()
                budget = min(max(mem_free() // 5, 4096), 65536)
            else:
                budget = 1 << 18
        self.msg_to_send = MessageQueue(budget)  # messages not sent yet, oldest first
        self.inflight = []  # messages sent and unanswered, in send order
        self.subs = []  # (filter, qos) to renew on a new session
        self.sub_to_send = []  # (op, [(filter, qos)]) to SUBSCRIBE (op 0x82) or UNSUBSCRIBE
        self.sub_to_confirm = {}  # pid -> (op, [(filter, qos)]) awaiting SUBACK / UNSUBACK
        self._state = _OFFLINE
        # where a failure met now is reported (PLACES): while connecting, where the
        # attempt was started; else check_msg, or wait_msg while in it
        self._place = _IN_CHECK_MSG
        self._fails = 0  # attempts since a link last carried a packet
        self._when = 0  # ticks_ms: offline, when the next attempt may start, _wait_ms
        self._wait_ms = 0  # after the failure; online, when CONNACK came
        self._lastpid = 0  # the last pid drawn (kept by the store)
        self._watch = [0, 0, None]  # DROP_AFTER's watch: see _WATCH_*

    # -- the hooks simple2 calls: each flow's outcome

    def on_ack(self, pid, status):
        m = _find(self, pid)
        if m:
            self.inflight.remove(m)
            # (QoS 1: left to the next flush; a cut before it sends it once more, which
            # QoS 1 allows. QoS 2: at once, else a cut would deliver it twice)
            if self.store:
                _keep(self, "remove", pid, m[_QOS] == 2)
            q = self.msg_to_send
            if q.spares < _SPARES_MOST:  # kept for a next message (without its data)
                m[_TOPIC] = m[_MSG] = None
                m[_NEXT] = q.spare
                q.spare = m
                q.spares += 1
            self.cbstat(pid, status)
            if q._count:  # room in the window now
                self.send_queue()
            return
        self.sub_to_confirm.pop(pid, None)  # (a SUBACK reports each filter: the first ends it)
        self.cbstat(pid, status)

    def on_timeout(self, pid):
        if _find(self, pid) or pid in self.sub_to_confirm:
            # no answer in time: kept, sent again with its pid on a new link; this one
            # is suspect (said once, for all flows)
            if self.sock:
                self._close()
                self._issue(MQTTException(_ENOACK), _IN_CHECK_MSG)
            return
        self.cbstat(pid, _STIMEOUT)

    def on_pubrec(self, pid):
        m = _find(self, pid)
        if m and m[_STATE] != _RELEASED:  # from now on PUBREL, never the message again,
            m[_STATE] = _RELEASED  # also after a power cut
            if self.store:
                _keep(self, "state", pid, _RELEASED)

    def on_qos2(self, pid, held):
        if self.store:  # before the answer: delivered once
            _keep(self, "hold" if held else "release", pid)

    def on_connect(self, session_present):
        # put our side of the session back [MQTT-4.4.0-1]; a failure meanwhile is the
        # attempt's (connect or reconnect, _place)
        self._state = _ONLINE
        place = self._place
        # a packet after CONNACK shows the link holds (_issue() then restarts the
        # backoff): CONNACK's time is made 1 ms older, so a packet in the same ms counts
        self._when = self.last_cpacket
        self.last_cpacket = ticks_add(self._when, -1)
        self.conn_issue = None
        self.rcv_pids.clear()
        if not session_present:  # a new session: nothing is past PUBREC
            for m in self.inflight:
                if m[_STATE] == _RELEASED:
                    m[_STATE] = _SENT
                    if self.store:
                        _keep(self, "state", m[_PID], _SENT)  # before anything goes out
            if self.subs:
                self._renew = True  # until resubscribe() has sent them
        dropped = self._refused_message()
        if session_present:  # first, in their order [MQTT-4.4.0-1]
            self._resend_inflight(True)
        if self.sub_to_confirm or self.sub_to_send or self._renew:
            from .resubscribe import renew

            renew(self)  # unanswered, queued, then remembered (UN)SUBSCRIBEs
        if not session_present:  # published anew once the subscriptions are back, so
            self._resend_inflight(False)  # that replies on them are not missed
        # (the queue waits for send_queue(), the next publish(), an answer, or HOLD_MS:
        # a program may subscribe first, as 2.2.0's do)
        if dropped:
            self._drop(dropped, "the broker closed the link %d times right after it (%s())", (self.DROP_AFTER, self.PLACES[place]))
        if self._state == _ONLINE:
            self._place = _IN_CHECK_MSG

    def on_tick(self, now):
        # what waited while offline goes out once the link has held for HOLD_MS, if the
        # application has not sent it first (send_queue(), or publish(): a program may
        # subscribe before, as 2.2.0's do)
        if (self.msg_to_send._count or self.sub_to_send) and ticks_diff(now, self._when) >= self.HOLD_MS:
            self.send_queue()

    def on_link_error(self, e):
        return self._issue(e, self._place)

    def _refused_message(self):
        # DROP_AFTER: the message re-sent first, if the links since closed right after
        # it, with nothing received, DROP_AFTER times in a row: taken out, returned
        watch = self._watch
        ended = watch[_WATCH_END]  # what ended the last link, if nothing had come on it
        watch[_WATCH_END] = None
        m = self.inflight and self.inflight[0]
        if m and m[_STATE] != _RELEASED and m[_PID] == watch[_WATCH_PID] and ended:
            code = ended.args[0] if isinstance(ended, MQTTException) else None
            if code not in _OURS:
                watch[_WATCH_COUNT] += 1
                if watch[_WATCH_COUNT] >= self.DROP_AFTER > 0:
                    self.inflight.remove(m)
                    if self.store:
                        _keep(self, "remove", m[_PID])
                    watch[_WATCH_COUNT] = 0
                    watch[_WATCH_PID] = self.inflight and self.inflight[0][_PID]
                    return m
                return None
        watch[_WATCH_COUNT] = 0
        watch[_WATCH_PID] = m and m[_PID]
        return None

    def _resend_inflight(self, session_present):
        for m in self.inflight:
            if not self.sock:  # failed again: the rest waits for the next connection
                break
            try:
                if m[_STATE] == _RELEASED:  # past PUBREC in the session the broker kept
                    _track(self, m[_PID])
                    _send_pid(self, _PUBREL, m[_PID])
                else:  # DUP=1 with its pid if the broker kept the session, else anew
                    _publish(self, m, session_present)
            except _FAILURES as e:
                self._issue(e, self._place)

    # -- connection

    def _issue(self, e, place):
        # The one place that decides what an exception means. With the socket closed it
        # was a connection failure: kept in conn_issue, the next attempt after delay().
        # With the socket open it was something else (a bad argument, an error raised by
        # a callback): the caller's to see. "Not connected" keeps the outage's cause.
        code = e.args[0] if isinstance(e, MQTTException) else None
        state = self._state
        if code == _ECONNOT and state == _CONNECTING:  # (ping() before CONNACK)
            return None
        if self.sock or code in _BUGS:
            if state == _CONNECTING and not self.sock:  # refused before any socket (a
                self._state = _OFFLINE  # bad argument): no attempt is under way, and
                self._place = _IN_CHECK_MSG  # the next call starts one
            raise e
        if state == _ONLINE and ticks_diff(self.last_cpacket, self._when) >= 0:
            self._fails = 0  # the link carried packets: the backoff starts afresh
        if state != _OFFLINE:  # a link or an attempt ended
            if self.conn_issue is None:  # (for DROP_AFTER: _fails is 0 once a packet came)
                self._watch[_WATCH_END] = self._fails and e
            if code in _REFUSALS:  # retrying will not change it: the longest wait
                self._fails = 16
            # the first attempt after a link that was up goes at once; after that, and
            # after a failed attempt, delay() (a broker that accepts and drops the
            # client at once is not hammered: links without a packet count as attempts)
            once = state == _ONLINE and self._fails <= 1
            self._wait_ms = 0 if once else int(self.delay(self._fails))
            self._when = ticks_add(ticks_ms(), self._wait_ms)
            self.forget_address()  # resolved again for the next attempt
            self._state = _OFFLINE
            self._place = _IN_CHECK_MSG
        elif code == _ECONNOT and self.conn_issue:
            return None
        self.conn_issue = (e, place)
        self.log()  # once per failure, not at every is_conn_issue()
        return None

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
            # (a wait longer than the one set means the ticks went round: due long ago;
            # online, _when is CONNACK's time, past)
            if self._fails and 0 < ticks_diff(self._when, ticks_ms()) <= self._wait_ms:
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

    def _draw_pid(self):
        # a pid no flow, kept or queued message holds (_new_pid below), for
        # umqtt.resubscribe (it does not import this module). Every pid robust2 sends
        # is drawn so: simple2's own _new_pid() only looks at the flows in flight.
        return _new_pid(self)

    def is_conn_issue(self):
        return self.conn_issue is not None

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
        try:
            _Client.disconnect(self)
        except _FAILURES as e:
            self._issue(e, 6)
        self._state = _OFFLINE
        self._fails = 0  # (an application's disconnect: no backoff before the next)

    def ping(self):
        try:
            _Client.ping(self)
        except _FAILURES as e:
            self._issue(e, 7)

    def wait_msg(self):
        if self._state != _CONNECTING:
            self._place = 8
        try:
            return _Client.wait_msg(self)
        finally:
            if self._state != _CONNECTING:
                self._place = _IN_CHECK_MSG

    def things_to_do(self):
        """0: everything sent and answered, nothing queued: safe to sleep."""
        return len(self.msg_to_send) + len(self.inflight) + len(self.sub_to_send) + len(self.sub_to_confirm)

    # -- messages

    def publish(self, topic, msg, retain=False, qos=0):
        """Sends now when it can, else queues; a QoS >= 1 message is kept until its flow
        completes. Returns the pid of a QoS >= 1 message (sent or queued), else None."""
        queue = self.msg_to_send
        if queue._count and self._state == _ONLINE:  # the backlog goes first
            self.send_queue()
        if not qos and not queue._count and self._state == _ONLINE:
            # The common QoS 0 case: sent now, nothing kept, nothing allocated. (Not
            # through simple2's publish(): its qos, dup and pid have nothing to check
            # here, and its frame, made on the heap, costs more than the rest.)
            try:
                if type(msg) is not bytes:
                    msg = _encode(msg, _MAX_REMAINING)
                first = _PUBLISH | _RETAIN_FLAG if retain else _PUBLISH
                return _send_publish(self, first, _publish_topic(self, topic, 0), msg, 0)
            except _FAILURES as e:
                self._issue(e, _IN_PUBLISH)  # (then kept, if KEEP_QOS0)
        return _publish_kept(self, topic, msg, retain, qos)

    def add_msg_to_send(self, data):
        """The queue policy; override to change it. data is a message, whose first four
        fields are (topic, msg, retain, qos), then pid and state. Appends it, then while
        the queue is over MSG_QUEUE_MAX messages or MSG_QUEUE_BYTES bytes of heap drops
        the oldest QoS 0 message, or else the oldest one. Every drop is reported:
        status SDROPPED. A record is the client's: once its flow ends it is emptied and
        used for a later message, so keep a copy (data[:6]), not data."""
        q = self.msg_to_send
        q.append(data)
        most = self.MSG_QUEUE_MAX
        budget = self.MSG_QUEUE_BYTES or q.budget
        while (most is not None and q._count > most) or q.bytes > budget:
            m = q._first
            if q.qos0:  # the oldest QoS 0 message goes first
                while m[_QOS]:
                    m = m[_NEXT]
            over_count = most is not None and q._count > most  # (said before the removal)
            q.remove(m)
            if m[_QOS] and self.store:
                _keep(self, "remove", m[_PID])
            if over_count:
                self._drop(m, "queue over MSG_QUEUE_MAX=%d (publish())", most)
            else:
                self._drop(m, "queue over MSG_QUEUE_BYTES=%d (publish())", budget)

    def _drop(self, m, why, values=None):
        # m, a message (or the pid of one never kept), is reported SDROPPED; the log says
        # why (why % values)
        pid = m
        if type(m) is list:
            m[_STATE] = _DROPPED
            pid = m[_PID]
        try:
            self.log("dropped message", pid, why if values is None else why % values)
        except MemoryError:  # (the heap is full: the status below still comes)
            pass
        self.cbstat(pid or 0, _SDROPPED)

    def send_queue(self):
        """Sends queued messages, oldest first, while the in-flight window has room (at
        most CONFIRM_QUEUE_MAX messages a call), then queued subscriptions. True when
        both queues are empty."""
        q = self.msg_to_send
        n = self.CONFIRM_QUEUE_MAX  # (QoS 0 included: a call's work is bounded)
        while q._count and self._state == _ONLINE and len(self.inflight) < self.CONFIRM_QUEUE_MAX and n:
            m = q.pop(0)  # (out of the queue before _send keeps it in flight)
            if not _send(self, m):  # a QoS 0 message not sent: still the first
                q.insert(0, m)
                break
            n -= 1
        if self.sub_to_send:
            from .resubscribe import send_queued

            send_queued(self)
        if self.store and not self.inflight:  # (acknowledgements written lazily)
            _keep(self, "flush")
        return not (q._count or self.sub_to_send)

    # -- subscriptions (umqtt.resubscribe) and the store's side (umqtt.snapshot): loaded
    # on use

    def subscribe(self, topic, qos=0, resubscribe=True):
        from .resubscribe import subscribe

        return subscribe(self, topic, qos, resubscribe)

    def unsubscribe(self, topic):
        from .resubscribe import unsubscribe

        return unsubscribe(self, topic)

    def resubscribe(self):
        """Every remembered subscription, in one SUBSCRIBE, once per new session; while
        offline nothing: the next connection renews them."""
        if self._renew and self._state == _ONLINE:
            from .resubscribe import resubscribe

            resubscribe(self)

    def snapshot(self):
        """What the store saves: (the last pid drawn, the kept messages in send order as
        [topic, msg, retain, qos, pid, state, ...], the incoming QoS 2 pids held). The
        messages are the client's live records: read them now (a record is reused
        once its flow ends)."""
        from .snapshot import snapshot

        return snapshot(self)

    def restore(self, last_pid, messages, held):
        """Puts back what snapshot() gave (the store calls it from load())."""
        from .snapshot import restore

        restore(self, last_pid, messages, held)


# -- the hot paths' helpers: module functions, found at once (a method is searched for
# in the instance first)


def _find(c, pid):
    # the message in flight with this pid
    for m in c.inflight:
        if m[_PID] == pid:
            return m
    return None


def _keep(c, event, arg=None, arg2=None):
    # Tell the store of an event (umqtt.store); callers look at c.store first. A
    # failure is logged, the message stays in RAM, and the store recovers on a later
    # event. (Nothing here is imported: a full heap must not make the event raise.)
    s = c.store
    try:
        f = getattr(s, event, None)
        if event == "flush":
            if f:
                f()
        elif not f:  # a store with only save(): the whole snapshot() each time
            s.save(c.snapshot())
        elif arg2 is None:
            f(c, arg)
        else:
            f(c, arg, arg2)
    except Exception as e:  # (OSError, MemoryError; a store's own bug too)
        if c.DEBUG:  # (only then: logging allocates, and the heap may be full)
            c.log("store failed", e)


def _queued(c, m):
    for q in c.msg_to_send:
        if q[:4] == m[:4]:
            return True
    return False


def _new_pid(c):
    # a pid no flow uses: in flight, kept for a re-send, or promised to a queued
    # message. Queued messages got their pids in turn since the queue was last empty,
    # so a new one can only meet one of theirs after 65535 more
    q = c.msg_to_send
    if not q._count:
        q.pids_drawn = 0
    while True:
        p = next(c.newpid)
        q.pids_drawn += 1
        if p in c.rcv_pids or p in c.sub_to_confirm or c.inflight and _find(c, p):
            continue
        if q.pids_drawn > 65535 and _queued_pid(q, p):
            continue
        c._lastpid = p
        return p


def _queued_pid(q, pid):
    # (a loop, not a comprehension: one would make pid a cell, allocated at each call
    # of the function that holds it)
    for m in q:
        if m[_PID] == pid:
            return True
    return False


def _send(c, m):
    # send_queue(): publish queued message m now. A QoS >= 1 message enters the
    # in-flight list first: if the write fails it is re-sent after the reconnect.
    # (queued -> in flight is not stored: restored as queued, a message is sent again
    # with its pid, which a broker that has it takes as a repeat.) False: a QoS 0
    # message was not sent.
    if m[_QOS]:
        c.inflight.append(m)
        m[_STATE] = _SENT
    try:
        _publish(c, m, False)
    except _FAILURES as e:
        c._issue(e, _IN_SENDQUEUE)
    return m[_QOS] or c.sock is not None


def _publish(c, m, dup):
    # PUBLISH kept message m (its topic and payload were checked when it was kept)
    _send_publish(
        c,
        _PUBLISH | m[_QOS] << 1 | (_DUP_FLAG if dup else 0) | (_RETAIN_FLAG if m[_RETAIN] else 0),
        m[_TOPIC],
        m[_MSG],
        m[_PID],
    )


def _publish_kept(c, topic, msg, retain, qos):
    # publish() of a message that is kept: QoS >= 1 until its flow completes, QoS 0
    # while the link is down (KEEP_QOS0). Sent now if the link is up with nothing
    # queued and the window has room, else queued.
    online = c._state == _ONLINE and not c.msg_to_send._count
    _check_qos(qos)
    pid = _new_pid(c) if qos else None
    try:  # a message the heap cannot hold is dropped and reported, never raised
        t = _publish_topic(c, topic, qos)
        # a kept payload is a copy (the caller may reuse its buffer), checked for
        # length before it is kept
        if type(msg) is not bytes or len(msg) > _TOPIC_AND_PAYLOAD_MOST - len(t):
            msg = bytes(_encode(msg, _TOPIC_AND_PAYLOAD_MOST - len(t)))
        q = c.msg_to_send
        m = q.spare
        if m:  # a record used before (see on_ack)
            q.spare = m[_NEXT]
            q.spares -= 1
            m[_TOPIC] = t
            m[_MSG] = msg
            m[_RETAIN] = retain
            m[_QOS] = qos
            m[_PID] = pid
            m[_STATE] = _QUEUED
            m[_NEXT] = None
        else:
            m = [t, msg, retain, qos, pid, _QUEUED, None]
    except MemoryError:
        c._drop(pid, "no memory to keep it (publish())")  # (no tuple: the heap is full)
        return pid
    if online and qos and len(c.inflight) < c.CONFIRM_QUEUE_MAX:
        # sent now: in flight first (if the write fails it is re-sent after the
        # reconnect), kept before it goes out (its pid is not reused)
        m[_STATE] = _SENT
        c.inflight.append(m)
        if c.store:
            _keep(c, "add", m)
        try:
            _publish(c, m, False)
        except _FAILURES as e:
            c._issue(e, _IN_PUBLISH)
    elif not (qos or c.KEEP_QOS0):  # not sent, not kept: reported
        c._drop(m, "offline, and KEEP_QOS0 is False (publish())")
    elif c.NO_QUEUE_DUPS and _queued(c, m):
        c._drop(m, "NO_QUEUE_DUPS: equal to a queued message (publish())")
    else:
        try:
            c.add_msg_to_send(m)
        except MemoryError:
            if m in c.msg_to_send:
                c.msg_to_send.remove(m)
            c._drop(m, "no memory to queue it (publish())")
            return pid
        if qos and m[_STATE] == _QUEUED and c.store:  # (not if the policy dropped it)
            _keep(c, "add", m)
    return pid

