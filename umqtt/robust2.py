# umqtt.robust2: keeps every QoS >= 1 message until the broker has it, across outages,
# and never blocks the application. MIT license; see LICENSE.
from .simple2 import (
    MQTTClient as _Client, MQTTException, _topic, _enc, ticks_ms, ticks_add, ticks_diff)

try:
    from random import getrandbits
except ImportError:  # a port without random: no jitter
    def getrandbits(n):
        return 0


class MQTTClient(_Client):
    DEBUG = False  # print connection issues and dropped messages
    KEEP_QOS0 = True  # queue QoS 0 messages that cannot be sent now
    NO_QUEUE_DUPS = False  # True: a message equal to a queued one is dropped (reported)
    MSG_QUEUE_MAX = 5  # messages waiting to be sent (offline, or the window is full)
    MSG_QUEUE_BYTES = 8192  # ... and their topic + payload bytes
    CONFIRM_QUEUE_MAX = 20  # in-flight window: QoS >= 1 messages awaiting their answer
    RESUBSCRIBE = True  # renew subscriptions when the broker lost the session
    DROP_AFTER = 3  # the broker closed the link this many times in a row right after the
    # same message was re-sent: it refuses it (too big, not allowed): dropped, SDROPPED
    DELAY_MIN = 500  # ms before the second connection attempt; doubles up to
    DELAY_MAX = 60000  # ms, with jitter: see delay()
    PLACES = ("?", "connect", "publish", "subscribe", "reconnect", "sendqueue", "disconnect",
              "ping", "wait_msg", "keepalive", "check_msg")  # conn_issue[1] names one
    conn_issue = None  # (exception, place): see PLACES
    _fails = _due = 0  # attempts since a link last carried a packet; ticks_ms of the next
    _renew = False  # the remembered subscriptions are to be renewed: a new session, or
    # one remembered while offline; resubscribe() does it once connected
    _cbstat = _Client.cbstat  # the application's status callback: none yet
    store = None  # where messages survive a power cut: see umqtt.store
    _lastpid = 0  # the last pid drawn, for the store
    _hp = _hs = 0  # the pid re-sent first on the last link, and how often in a row it
    # was followed by the broker closing the link with nothing else in between
    _le = 0  # what ended the last link, if no packet had come on it

    def __init__(self, *args, **kwargs):
        _Client.__init__(self, *args, **kwargs)
        self.subs = []  # (filter, qos) to renew on a new session
        self.msg_to_send = []  # (topic, msg, retain, qos, pid) not sent yet, oldest first
        self.inflight = []  # [topic, msg, retain, qos, pid, released] sent, unanswered, in order
        self.sub_to_send = []  # (op, [(filter, qos)]) to SUBSCRIBE (op 0x82) or UNSUBSCRIBE
        self.sub_to_confirm = {}  # pid -> (op, [(filter, qos)]) awaiting SUBACK / UNSUBACK

    # -- status reports and the pid space

    def set_callback_status(self, f):
        self._cbstat = f

    def cbstat(self, pid, status):
        # simple2 reports every answer, and every flow that timed out, here
        if status == 4:  # an over-size message in: the pid is the broker's, not ours
            return self._cbstat(pid, status)
        m = self._find(pid)
        if m or pid in self.sub_to_confirm:
            if not status:  # no answer in time: kept, sent again with its pid on a new
                if self.sock:  # link: this one is suspect (said once, for all flows)
                    self._close()
                    self._issue(MQTTException(53), 10)
                return
            if m:
                self.inflight.remove(m)
                self._save()
            else:  # (a SUBACK reports each filter: the first report ends the flow)
                del self.sub_to_confirm[pid]
        self._cbstat(pid, status)

    def _find(self, pid):
        for m in self.inflight:
            if m[4] == pid:
                return m

    def _pid(self, p=0):
        # a new pid must not be one promised to a queued message either
        return _Client._pid(self, p or self._newpid())

    def _send2(self, op, pid):
        if op == 0x62:  # PUBREL: from now on the message itself is never re-sent
            m = self._find(pid)
            if m and not m[5]:
                m[5] = 1
                self._save()  # after a power cut too: PUBREL, not the message again
        elif op != 0x40:  # PUBREC, PUBCOMP: a QoS 2 pid received, or released
            self._save()  # before the answer: delivered once, also across a power cut
        _Client._send2(self, op, pid)

    # -- connection

    def _issue(self, e, place):
        # A connection failure has closed the socket: it goes to conn_issue. With the
        # socket open it was something else (a bad argument, an error raised by a
        # callback): the caller's to see. "Not connected" keeps the outage's cause.
        if self.sock or isinstance(e, MQTTException) and e.args[0] in (4, 51):
            raise e
        if not (self.conn_issue and isinstance(e, MQTTException) and e.args[0] == 28):
            if self.conn_issue is None:  # the end of a link that was up (for DROP_AFTER;
                self._le = self._fails and e  # _fails is 0 once a packet came)
            self.conn_issue = (e, place)
            self.log()  # once per failure, not at every is_conn_issue()

    def _try(self, place, f, *args):
        # f(self, *args), a connection failure kept in conn_issue; None then
        try:
            return f(self, *args)
        except (OSError, MQTTException) as e:
            self._issue(e, place)

    def delay(self, fails):
        # ms to wait after `fails` failed attempts in a row: exponential, capped, with
        # jitter so that devices do not come back in step. Override to change the policy.
        d = min(self.DELAY_MAX, self.DELAY_MIN << min(fails, 16))
        return d - (d * getrandbits(8) >> 9)

    def connect(self, clean_session=True, place=1):
        # Every attempt counts until a packet comes in after CONNACK (check_msg): a
        # broker that accepts and drops the client at once (a duplicate client id) is
        # not hammered either.
        self._fails += 1
        sp = self._try(place, _Client.connect, clean_session)
        if sp is None:
            # a refusal that will not change by retrying waits the longest
            e = self.conn_issue[0]
            if isinstance(e, MQTTException) and e.args[0] in (21, 22, 24, 25):
                self._fails = 16
        self._due = ticks_add(ticks_ms(), int(self.delay(self._fails)))
        if sp is None:
            return None
        e = self._le  # what ended the last link, if nothing had come on it
        self._le = self.conn_issue = None
        # put our side of the session back [MQTT-4.4.0-1]
        self.rcv_pids.clear()
        if not sp:  # a new session: nothing is past PUBREC, no QoS 2 pid is held
            for m in self.inflight:
                m[5] = 0
            self._save()  # before anything goes out: a power cut must not undo it
            self._renew = True  # until resubscribe() has sent them
        m = self.inflight and self.inflight[0]
        d = None
        if m and not m[5] and m[4] == self._hp and e and e.args[0] not in (7, 28, 30, 53):
            self._hs += 1  # the link was closed (not by us) once more right after m
            if self._hs >= self.DROP_AFTER > 0:
                self.inflight.remove(m)
                self._save()
                d = m  # reported below, after the re-sends
                self._hs = 0
        else:
            self._hs = 0
        self._hp = self.inflight and self.inflight[0][4]
        for m in self.inflight:  # first, in their order
            if not self.sock:  # failed again: the rest waits for the next connection
                break
            if m[5]:  # past PUBREC in the session the broker kept
                self._pid(m[4])
                self._try(place, _Client._send2, 0x62, m[4])
            else:  # DUP=1 with its pid if the broker kept the session, else anew
                self._try(place, _Client.publish, m[0], m[1], m[2], m[3], sp, m[4])
        for p, s in self._pending():  # with the pid subscribe() returned
            if self.sock:
                self._try(place, _Client._sub, s[0], s[1], 0, p)
        self.send_queue()  # (an UNSUBSCRIBE queued offline before the renewal below)
        if self.RESUBSCRIBE:
            self.resubscribe()
        if d:
            self._drop(d)
        return sp

    def _pending(self):
        # the unanswered (UN)SUBSCRIBEs, oldest first: pids are drawn in turn, and a
        # dict keeps no order on MicroPython
        return sorted(self.sub_to_confirm.items(), key=lambda i: -((self._lastpid - i[0]) % 65535))

    def reconnect(self):
        # At most one attempt, and only when it is due: returns None at once otherwise.
        if not self._fails or ticks_diff(ticks_ms(), self._due) >= 0:
            return self.connect(False, 4)

    def resubscribe(self):
        # every remembered subscription, in one SUBSCRIBE, once per connection; while
        # offline nothing: connect() renews them when the session is new
        if self._renew and self.sock:
            self._renew = False
            p = []  # what the unanswered (UN)SUBSCRIBEs, in order, leave subscribed:
            for k, s in self._pending():  # not asked for twice
                for t, q in s[1]:
                    t = _enc(t)
                    p = [f for f in p if f[0] != t]
                    if s[0] == 0x82:
                        p.append((t, q))
            fs = [s for s in self.subs if (_enc(s[0]), s[1]) not in p]
            if fs:
                self._sub1((0x82, fs))

    def is_conn_issue(self):
        return self.conn_issue is not None

    def is_keepalive(self):
        # False once the link was found dead (no PINGRESP, or no answer in time)
        e = self.conn_issue
        return not (e and isinstance(e[0], MQTTException) and e[0].args[0] in (7, 53))

    def log(self, *what):
        if self.DEBUG:
            e = self.conn_issue or (None, 0)
            print("MQTT (%s):" % self.PLACES[e[1]], *(what or (repr(e[0]),)))

    def disconnect(self):
        self._try(6, _Client.disconnect)

    def ping(self):
        self._try(7, _Client.ping)

    def check_msg(self):
        try:  # the idle call, without allocating
            r = _Client.check_msg(self)
        except (OSError, MQTTException) as e:
            r = self._issue(e, 10)
        if r:  # the link carries packets: the next outage starts the backoff afresh
            self._fails = 0
        if self.msg_to_send or self.sub_to_send:  # (an idle call: no call at all)
            self.send_queue()  # what is queued, as far as the window allows
        return r

    def wait_msg(self):
        r = self._try(8, _Client.wait_msg)
        if r:
            self._fails = 0
        return r

    def things_to_do(self):
        # 0: everything sent and answered, nothing queued: safe to sleep
        return len(self.msg_to_send) + len(self.inflight) + len(self.sub_to_send) + len(self.sub_to_confirm)

    # -- messages

    def publish(self, topic, msg, retain=False, qos=0):
        # Sends now when it can, else queues; a QoS >= 1 message is kept until its flow
        # completes. Returns the pid of a QoS >= 1 message (sent or queued), else None.
        if not qos and self.sock and not self.msg_to_send:
            try:  # the common QoS 0 case, without allocating
                return _Client.publish(self, topic, msg, retain)
            except (OSError, MQTTException) as e:
                self._issue(e, 2)
        t = _topic(topic, qos)  # a kept payload is copied: the caller may reuse its buffer
        m = (t, bytes(_enc(msg, 268435451 - len(t))), retain, qos, self._newpid() if qos else None)
        if self.msg_to_send or not (self._room() and self._send(m, 2)):
            if not (qos or self.KEEP_QOS0):  # not sent, not kept: reported
                self._drop(m)
            else:  # it waits in the queue, behind the others
                for q in self.msg_to_send:
                    if self.NO_QUEUE_DUPS and q[:4] == m[:4]:
                        self._drop(m)
                        break
                else:
                    self.add_msg_to_send(m)
            if qos:
                self._save()
        return m[4]

    def _newpid(self):
        # a pid no flow uses: in flight, kept for a re-send, or promised to a queued message
        p = 0
        while not p or p in self.rcv_pids or p in self.sub_to_confirm:
            p = next(self.newpid)
            for q in self.inflight, self.msg_to_send:
                for m in q:
                    if m[4] == p:
                        p = 0
        self._lastpid = p
        return p

    def _room(self):
        return self.sock and len(self.inflight) < self.CONFIRM_QUEUE_MAX

    def _send(self, m, place=5):
        # Publish m now. A QoS >= 1 message enters the in-flight list first: if the write
        # fails it is re-sent after the reconnect. False: a QoS 0 message was not sent.
        if m[3]:
            self.inflight.append(list(m) + [0])
            self._save()  # before it goes out: after a power cut its pid is not reused
        self._try(place, _Client.publish, m[0], m[1], m[2], m[3], False, m[4])
        return m[3] or self.sock is not None

    def add_msg_to_send(self, data):
        # The queue policy; override to change it. Appends, then while the queue is over
        # MSG_QUEUE_MAX messages or MSG_QUEUE_BYTES bytes drops the oldest QoS 0
        # message, or else the oldest one. Every drop is reported: status SDROPPED.
        q = self.msg_to_send
        q.append(data)
        while True:
            n = 0
            for m in q:
                n += len(m[0]) + len(m[1])
            if len(q) <= self.MSG_QUEUE_MAX and n <= self.MSG_QUEUE_BYTES:
                return
            for m in q:
                if not m[3]:
                    break
            else:
                m = q[0]
            q.remove(m)
            self._drop(m)

    def _drop(self, m):
        self.log("dropped", m[0], m[4])
        self._cbstat(m[4] or 0, 5)

    def _save(self):
        if self.store:
            try:
                self.store.save(self)
            except (OSError, MemoryError) as e:  # kept in RAM; the next save tries again
                self.log("store failed", repr(e))

    def send_queue(self):
        # Sends queued messages, oldest first, while the in-flight window has room, then
        # queued subscriptions. True when both queues are empty.
        q = self.msg_to_send
        while q and self._room():
            m = q.pop(0)  # (out of the queue before _send saves it in flight)
            if not self._send(m):  # a QoS 0 message not sent: still the first
                q.insert(0, m)
                break
        while self.sub_to_send and self.sock:
            self._sub1(self.sub_to_send.pop(0))
        return not (q or self.sub_to_send)

    # -- subscriptions

    def subscribe(self, topic, qos=0, resubscribe=True):
        fs = self._filters(topic, qos)
        if self.RESUBSCRIBE and resubscribe:
            for f in fs:  # remembered one filter at a time
                self._forget(f[0])
                self.subs.append(f)
            if not self.sock:  # not queued: the next connect() renews all remembered
                self._renew = True
                return None
        return self._sub1((0x82, fs))

    def unsubscribe(self, topic):
        fs = self._filters(topic, 0)
        for f in fs:
            self._forget(f[0])
        return self._sub1((0xA2, fs))

    def _filters(self, topic, qos):
        # [(filter, qos)] of topic (one filter, or a list); EARG now, even offline, for
        # a bad one: nothing bad is remembered or queued
        fs = []
        for t in topic if isinstance(topic, list) else [topic]:
            t, q = t if isinstance(t, tuple) else (t, qos)
            _topic(t, q, 1)
            fs.append((t, q))
        if not fs:
            raise MQTTException(51)
        return fs

    def _forget(self, t):
        # drop filter t (str or bytes alike) from the remembered subscriptions
        t = _enc(t)
        for s in self.subs[:]:
            if _enc(s[0]) == t:
                self.subs.remove(s)

    def _sub1(self, s):
        # s = (op, [(filter, qos)]): SUBSCRIBE or UNSUBSCRIBE now, else once connected
        p = self.sock and self._try(3, _Client._sub, s[0], s[1], 0)
        if p:
            self.sub_to_confirm[p] = s
        else:
            self.sub_to_send.append(s)
        return p
