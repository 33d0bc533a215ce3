# umqtt.robust2: keeps every QoS >= 1 message until the broker has it, across outages,
# and never blocks the application. MIT license; see LICENSE.
from umqtt import simple2
from umqtt.simple2 import MQTTException, ticks_ms, ticks_add, ticks_diff

try:
    from random import getrandbits
except ImportError:  # a port without random: no jitter
    def getrandbits(n):
        return 0


class MQTTClient(simple2.MQTTClient):
    DEBUG = False  # print connection issues and dropped messages
    KEEP_QOS0 = True  # queue QoS 0 messages that cannot be sent now
    NO_QUEUE_DUPS = False  # True: a message equal to a queued one is dropped (reported)
    MSG_QUEUE_MAX = 5  # messages waiting to be sent (offline, or the window is full)
    MSG_QUEUE_BYTES = 8192  # ... and their topic + payload bytes
    CONFIRM_QUEUE_MAX = 20  # in-flight window: QoS >= 1 messages awaiting their answer
    RESUBSCRIBE = True  # renew subscriptions when the broker lost the session
    DELAY_MIN = 500  # ms before the second connection attempt; doubles up to
    DELAY_MAX = 60000  # ms, with jitter: see delay()
    PLACES = ("?", "connect", "publish", "subscribe", "reconnect", "sendqueue",
              "disconnect", "ping", "wait_msg", "keepalive", "check_msg")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.subs = []  # [topic, qos] to renew on a new session
        self.msg_to_send = []  # (topic, msg, retain, qos, pid) not sent yet, oldest first
        self.inflight = []  # [topic, msg, retain, qos, pid, released] sent, unanswered, in order
        self.sub_to_send = []  # (topic, qos) to (un)subscribe; qos -1 = unsubscribe
        self.sub_to_confirm = {}  # pid -> (topic, qos) awaiting SUBACK / UNSUBACK
        self.conn_issue = None  # (exception, place): see PLACES
        self._fails = 0  # connection attempts failed in a row
        self._due = 0  # ticks_ms of the next attempt
        self._subd = False  # subscriptions are in place on this connection

    # -- status reports and the pid space

    def set_callback_status(self, f):
        self._cbstat = f

    def _cbstat(self, pid, status):
        pass

    def cbstat(self, pid, status):
        # simple2 reports every answer, and every flow that timed out, here
        m = self._find(pid)
        if m:
            if not status:  # no answer in time: keep it; the link is suspect
                self.conn_issue = (MQTTException(53), 10)
                self._close()
                return
            self.inflight.remove(m)
        elif pid in self.sub_to_confirm:
            s = self.sub_to_confirm.pop(pid)
            if not status:
                self.sub_to_send.append(s)
                return
        self._cbstat(pid, status)

    def _find(self, pid):
        for m in self.inflight:
            if m[4] == pid:
                return m

    def _pid(self, p=0):
        # a new pid must not be one promised to a queued message either
        return super()._pid(p or self._newpid())

    def _send2(self, op, pid):
        m = self._find(pid)
        if op == 0x62 and m:  # PUBREL: from now on the message itself is never re-sent
            m[5] = 1
            super()._pid(pid)
        super()._send2(op, pid)

    # -- connection

    def _issue(self, e, place):
        if isinstance(e, MQTTException) and e.args[0] in (4, 51):
            raise e  # a bad argument is the caller's bug, not a connection issue
        self.conn_issue = (e, place)

    def delay(self, fails):
        # ms to wait after `fails` failed attempts in a row: exponential, capped, with
        # jitter so that devices do not come back in step. Override to change the policy.
        d = min(self.DELAY_MAX, self.DELAY_MIN << min(fails, 16))
        return d - (d * getrandbits(8) >> 9)

    def connect(self, clean_session=True, place=1):
        try:
            sp = super().connect(clean_session)
        except (OSError, MQTTException) as e:
            self._issue(e, place)
            # a refusal that will not change by retrying waits the longest
            self._fails = 16 if isinstance(e, MQTTException) and e.args[0] in (21, 22, 24, 25) else self._fails + 1
            self._due = ticks_add(ticks_ms(), self.delay(self._fails))
            return None
        self.conn_issue = None
        self._fails = 0
        # put our side of the session back [MQTT-4.4.0-1]
        self.rcv_pids.clear()
        for p in self.sub_to_confirm:
            self.sub_to_send.append(self.sub_to_confirm[p])
        self.sub_to_confirm.clear()
        self._subd = sp
        if not sp and self.RESUBSCRIBE:
            self.resubscribe()
        for m in self.inflight:
            if not self.sock:
                break
            try:
                if sp and m[5]:
                    self._send2(0x62, m[4])
                else:  # DUP=1 with its pid if the broker kept the session, else anew
                    m[5] = 0
                    super().publish(m[0], m[1], m[2], m[3], sp, m[4])
            except (OSError, MQTTException) as e:
                self._issue(e, place)
        self.send_queue()
        return sp

    def reconnect(self):
        # At most one attempt, and only when it is due: returns at once otherwise.
        if self._fails and ticks_diff(self._due, ticks_ms()) > 0:
            return None
        return self.connect(False, 4)

    def resubscribe(self):
        # every remembered subscription, in one SUBSCRIBE, once per connection
        if self.subs and not self._subd:
            self._subd = True
            self._sub1(([tuple(s) for s in self.subs], 0))

    def is_conn_issue(self):
        if self.conn_issue:
            self.log()
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
        try:
            super().disconnect()
        except (OSError, MQTTException) as e:
            self._issue(e, 6)

    def ping(self):
        try:
            super().ping()
        except (OSError, MQTTException) as e:
            self._issue(e, 7)

    def check_msg(self):
        try:
            r = super().check_msg()
        except (OSError, MQTTException) as e:
            return self._issue(e, 10)
        if self.msg_to_send or self.sub_to_send:
            self.send_queue()
        return r

    def wait_msg(self):
        try:
            return super().wait_msg()
        except (OSError, MQTTException) as e:
            self._issue(e, 8)

    def things_to_do(self):
        # 0: everything sent and answered, nothing queued: safe to sleep
        return len(self.msg_to_send) + len(self.inflight) + len(self.sub_to_send) + len(self.sub_to_confirm)

    # -- messages

    def publish(self, topic, msg, retain=False, qos=0):
        # Sends now when it can, else queues; a QoS >= 1 message is kept until its flow
        # completes. Returns the pid of a QoS >= 1 message (sent or queued), else None.
        if not qos and self.sock and not self.msg_to_send:
            try:  # the common QoS 0 case, without allocating
                return super().publish(topic, msg, retain)
            except (OSError, MQTTException) as e:
                self._issue(e, 2)
        m = (simple2._topic(topic), simple2._enc(msg, 268435455), retain, qos, None)
        if qos not in (0, 1, 2):
            raise MQTTException(51)
        if qos:
            m = m[:4] + (self._newpid(),)
        if not self.msg_to_send and self._room():
            if self._send(m):
                return m[4]
        if qos or self.KEEP_QOS0:
            if self.NO_QUEUE_DUPS and any(q[:4] == m[:4] for q in self.msg_to_send):
                self._drop(m)
            else:
                self.add_msg_to_send(m)
        return m[4]

    def _newpid(self):
        p = next(self.newpid)
        while p in self.rcv_pids or self._find(p) or any(m[4] == p for m in self.msg_to_send):
            p = next(self.newpid)
        return p

    def _room(self):
        return self.sock and len(self.inflight) < self.CONFIRM_QUEUE_MAX

    def _send(self, m):
        # Publish m now. A QoS >= 1 message enters the in-flight list first: if the write
        # fails it is re-sent after the reconnect. False: a QoS 0 message was not sent.
        if m[3]:
            self.inflight.append(list(m) + [0])
        try:
            super().publish(m[0], m[1], m[2], m[3], False, m[4])
            return True
        except (OSError, MQTTException) as e:
            self._issue(e, 5)
            return m[3]

    def add_msg_to_send(self, data):
        # The queue policy; override to change it. Appends, then while the queue is over
        # MSG_QUEUE_MAX messages or MSG_QUEUE_BYTES bytes drops the oldest QoS 0
        # message, or else the oldest one. Every drop is reported: status SDROPPED.
        q = self.msg_to_send
        q.append(data)
        while len(q) > self.MSG_QUEUE_MAX or sum(len(m[0]) + len(m[1]) for m in q) > self.MSG_QUEUE_BYTES:
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

    def send_queue(self):
        # Sends queued messages, oldest first, while the in-flight window has room, then
        # queued subscriptions. True when both queues are empty.
        q = self.msg_to_send
        while q and self._room():
            m = q.pop(0)
            if not self._send(m):
                q.insert(0, m)
                break
        while self.sub_to_send and self.sock:
            self._sub1(self.sub_to_send.pop(0))
        return not (q or self.sub_to_send)

    # -- subscriptions

    def subscribe(self, topic, qos=0, resubscribe=True):
        if self.RESUBSCRIBE and resubscribe:
            self._forget(topic)
            self.subs.append([topic, qos])
        return self._sub1((topic, qos))

    def unsubscribe(self, topic):
        self._forget(topic)
        return self._sub1((topic, -1))

    def _forget(self, topic):
        self.subs = [s for s in self.subs if s[0] != topic]
        self.sub_to_send = [s for s in self.sub_to_send if s[0] != topic]

    def _sub1(self, s):
        if self.sock:
            try:
                if s[1] < 0:
                    p = super().unsubscribe(s[0])
                else:
                    p = super().subscribe(s[0], s[1])
                self.sub_to_confirm[p] = s
                return p
            except (OSError, MQTTException) as e:
                self._issue(e, 3)
        self.sub_to_send.append(s)
