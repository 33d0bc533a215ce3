# umqtt.simple2: a small MQTT 3.1.1 client whose check_msg() never blocks.
# MIT license; see LICENSE. Runs unchanged on MicroPython >= 1.19 and CPython >= 3.8.
import socket
import select

try:  # MicroPython: const() is built into its compiler, nothing to import for it
    from time import ticks_ms, ticks_add, ticks_diff
except ImportError:  # CPython: the few MicroPython names used here, and its sockets
    from ._cpython import *  # const, ticks_ms, ticks_add, ticks_diff, socket

_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_PUBREC = const(0x50)
_PUBREL = const(0x62)  # PUBREL carries flags 0b0010 [MQTT-3.6.1-1]
_PUBCOMP = const(0x70)
_SUBACK = const(0x90)
_UNSUBACK = const(0xB0)
_PINGRESP = const(0xD0)
_POLLIN = const(1)
_POLLOUT = const(4)
# error codes, see errno.py
_ECONCLOSE = const(1)
_ESTRTOLONG = const(4)
_EKEEPALIVE = const(7)
_ECONNOT = const(28)
_ECONLENGTH = const(29)
_ECONTIMEOUT = const(30)
_EPROTO = const(50)
_EARG = const(51)
_ETOOBIG = const(52)
_WBUF = const(128)  # bytes of the outgoing packet buffer
_BYTES = (bytes, bytearray, memoryview)


class MQTTException(Exception):
    pass


def pid_gen(pid=0):
    while True:
        pid = pid % 65535 + 1  # 1 to 65535, 0 is not a packet id [MQTT-2.3.1-1]
        yield pid


def _enc(d, n=65535):
    # str -> UTF-8 bytes, at most n of them: lengths are counted in bytes [MQTT-1.5.3]
    if isinstance(d, str):
        d = bytes(d, "utf-8")
    elif not isinstance(d, _BYTES):
        raise MQTTException(_EARG)
    if len(d) > n:
        raise MQTTException(_ESTRTOLONG)
    return d


def _topic(t, qos, f=0):
    # t as bytes, if it and the QoS are valid. f=0: a topic name, without wildcards
    # [MQTT-3.3.2-2]; 2: a will's. f=1: a filter, where '#' is only the whole last level
    # and '+' only a whole level [MQTT-4.7.1]
    try:
        t = bytes(_enc(t))  # (the same object if it is bytes; `in` fails on a bytearray)
        if qos or f:  # UTF-8 [MQTT-1.5.3-1], as far as the platform checks it: else the
            str(t, "utf-8")  # broker drops the link, and robust2 would send it again and
    except UnicodeError:  # again. (Not a QoS 0 topic: its publish allocates nothing.)
        raise MQTTException(_EARG)
    if qos not in (0, 1, 2) or type(qos) is not int or not t or 0 in t or (35 in t[:-1] if f & 1 else 35 in t or 43 in t):
        raise MQTTException(_EARG)
    for w in t.split(b"/") if f & 1 else ():
        if len(w) > 1 and (35 in w or 43 in w):
            raise MQTTException(_EARG)
    return t


def _u16(n):
    # n, if it is an int that fits 2 bytes
    if type(n) is not int or n >> 16:  # (-1 >> 16 is -1)
        raise MQTTException(_EARG)
    return n


def _ms(t):
    return -1 if t is None else int(t * 1000)


class MQTTClient:
    cb = None  # f(topic, msg, retained, dup), set by set_callback()
    sock = _pp = None
    _lw = ()  # the will's topic and message, set by set_last_will()
    _lwf = _ca = 0  # ... and its CONNECT flags; connect() awaits CONNACK
    _ls = _ts = 0  # ticks_ms: the last byte out, the next look for timeouts
    _tc = _tv = b""  # the last topic received, reused while it repeats, and its view

    def __init__(
        self,
        client_id,
        server,
        port=0,
        user=None,
        password=None,
        keepalive=0,
        ssl=False,
        ssl_params=None,
        socket_timeout=5,
        message_timeout=10,
        max_size=16384,
    ):
        self.client_id = client_id
        self.server = server
        self.port = port or (8883 if ssl else 1883)
        self.ssl = ssl
        self.ssl_params = ssl_params
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.socket_timeout = socket_timeout
        self.message_timeout = message_timeout
        self.max_size = max_size
        self.newpid = pid_gen()
        self.rcv_pids = {}  # pid -> ticks_ms deadline of each flow awaiting its answer
        self._q2 = set()  # incoming QoS 2 pids delivered, awaiting PUBREL
        self.last_ping = self.last_cpacket = ticks_ms()
        self._wb = bytearray(_WBUF)  # outgoing packets are built here: one write() each
        self._w2 = bytearray(2)
        self._rb = bytearray(64)  # the incoming packet; grows up to max_size
        self._rm = memoryview(self._rb)

    def set_callback(self, f):
        self.cb = f

    def set_callback_status(self, f):
        self.cbstat = f

    def cbstat(self, pid, status):
        pass

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self._lw = (_topic(topic, qos, 2), _enc(msg))
        self._lwf = 4 | qos << 3 | (32 if retain else 0)  # will flag, QoS, retain [MQTT-3.1.2.5]

    # -- writing: a packet is built in _wb and written with one write() if it fits

    def _start(self, op, n):
        # the fixed header: type and flags, then Remaining Length [MQTT-2.2.3]
        if n >> 28:  # more than 4 bytes of Remaining Length can say
            raise MQTTException(_ESTRTOLONG)
        if not self.sock:
            raise MQTTException(_ECONNOT)
        self._wt = ticks_ms()  # the whole packet out within socket_timeout from now
        b = self._wb
        b[0] = op
        i = 1
        while n >> 7:  # 7 bits a byte, the top bit set while more follow
            b[i] = n & 0x7F | 0x80
            n >>= 7
            i += 1
        b[i] = n
        self._wn = i + 1

    def _put(self, d, f=0):
        # append d to the packet in _wb: bytes (f: after their 2-byte length), or an
        # integer as 2 bytes [MQTT-1.5.2]
        if f:
            self._put(len(d))
        if isinstance(d, int):
            b = self._w2
            b[0] = d >> 8
            b[1] = d & 0xFF
            d = b
        b = self._wb
        i = self._wn
        n = len(d)
        if i + n > _WBUF:  # full: out with it, and with d too if _wb cannot hold it
            self._write()
            i = 0
            if n > _WBUF:
                return self._write(d, n)
        b[i : i + n] = d
        self._wn = i + n

    def _write(self, d=0, n=0):
        # write d[:n], by default the packet built in _wb, within socket_timeout from
        # the packet's start: the network may take it a piece at a time
        if not d:
            d = self._wb
            n = self._wn
            self._wn = 0
        o = 0
        while o < n:
            try:
                r = self.sock.write(d, o, n - o)
            except OSError:
                self._close()
                raise
            if r:
                o += r
                continue
            w = _ms(self.socket_timeout)
            if w >= 0:  # what is left of it
                w -= ticks_diff(ticks_ms(), self._wt)
                if w <= 0:
                    self._fail(_ECONTIMEOUT)  # half a packet is out: the stream is lost
            self._wait(_POLLOUT, 100 if w < 0 else min(w, 100))
        self._ls = ticks_ms()  # the last byte went out

    def _wait(self, f, n):
        # until the socket is ready for f (_POLLIN, _POLLOUT), n ms at most (-1: no limit)
        self._poll.modify(self.sock, f)
        self._poll.poll(n)

    def _send2(self, op, pid):
        # PUBACK, PUBREC, PUBREL, PUBCOMP
        self._start(op, 2)
        self._put(pid)
        self._write()

    def _pid(self, p=0):
        # track the flow of pid p, or of a new pid that is not in flight [MQTT-2.3.1-2]
        while not p:
            p = next(self.newpid)
            if p in self.rcv_pids:
                p = 0
        self.rcv_pids[p] = ticks_add(ticks_ms(), _ms(self.message_timeout))
        return p

    # -- connection

    def connect(self, clean_session=True):
        # Returns CONNACK's session-present flag (0 or 1). Bounded by socket_timeout
        # from the TCP connect to CONNACK, TLS handshake included.
        fs = [_enc(self.client_id)]
        fs += self._lw
        fl = (2 if clean_session else 0) | self._lwf
        if self.user is not None:
            fs.append(_enc(self.user))
            fl |= 0x80
            if self.pswd is not None:  # no password without a user [MQTT-3.1.2-22]
                fs.append(_enc(self.pswd))
                fl |= 0x40
        _u16(self.keepalive)  # 0 to 65535 s [MQTT-3.1.2.10]
        n = 10
        for f in fs:
            n += 2 + len(f)
        self.disconnect()
        to = _ms(self.socket_timeout)
        ai = socket.getaddrinfo(self.server, self.port, 0, socket.SOCK_STREAM)
        if not ai:  # some firmware answers [] for a name it cannot resolve
            raise OSError(-2)
        ai = ai[0]
        t = ticks_ms()  # (name resolution aside)
        s = self.sock = socket.socket(*ai[:3])
        try:
            s.settimeout(self.socket_timeout)
            s.connect(ai[-1])
            try:
                s.setsockopt(6, 1, 1)  # TCP_NODELAY: no Nagle stall between packets
            except OSError:
                pass
            if self.ssl:  # the handshake within what is left of socket_timeout
                from .tls import wrap

                s = self.sock = wrap(self, s, t)
            s.setblocking(False)
            p = self._poll = select.poll()
            p.register(s, _POLLIN)
            # CONNECT [MQTT-3.1]: protocol name, level 4, flags, keep alive, payload
            self._start(0x10, n)
            self._wt = t  # (connect() as a whole within socket_timeout)
            self._put(b"\0\4MQTT")
            self._put(0x400 | fl)
            self._put(self.keepalive)
            for f in fs:
                self._put(f, 1)
            self._write()
            # CONNACK [MQTT-3.2], within what is left of socket_timeout; any other
            # first packet fails as soon as its header is in (ECONLENGTH, see _rx)
            self._st = self._rn = 0
            self._rw = 2
            self._ca = 1
            while not self._rx():
                w = to - ticks_diff(ticks_ms(), t)
                if to >= 0 and w <= 0:
                    raise MQTTException(_ECONTIMEOUT)
                self._wait(_POLLIN, w)
            self._ca = 0
            b = self._rb
            if b[1]:
                raise MQTTException(20 + b[1] if b[1] < 6 else 20, b[1])  # refused, and why
            if b[0] > 1:  # reserved flags [MQTT-3.2.2.1]
                raise MQTTException(_EPROTO)
        except:
            self._close()
            raise
        if not b[0] & 1:  # a new session: no QoS 2 message is half received (a new
            self._q2 = set()  # set: one a callback still holds is the old session's)
        return b[0] & 1

    def _close(self):
        try:
            self.sock.close()
        except (OSError, AttributeError):  # (or no socket)
            pass
        self.sock = None

    def disconnect(self):
        try:
            self.sock.write(b"\xe0\0")  # DISCONNECT, best effort: never waits
        except (OSError, AttributeError):  # (or no socket)
            pass
        self._close()

    def ping(self):
        self._start(0xC0, 0)  # PINGREQ
        self._write()
        self.last_ping = self._ls
        if self._pp is None:
            self._pp = self._ls

    # -- requests: none of them waits for its answer

    def publish(self, topic, msg, retain=False, qos=0, dup=False, pid=0):
        # pid: for a re-send, the packet id the message had [MQTT-4.4.0-1]
        topic = _topic(topic, qos)
        msg = _enc(msg, 268435455)
        if pid:  # given for a re-send (robust2 gives None for QoS 0)
            _u16(pid)
        # topic, pid if QoS > 0, payload [MQTT-3.3.2]
        self._start(
            _PUBLISH | qos << 1 | (1 if retain else 0) | (8 if dup else 0),
            len(topic) + len(msg) + (4 if qos else 2),
        )
        self._put(topic, 1)
        if qos:
            pid = self._pid(pid)
            self._put(pid)
        self._put(msg)
        self._write()
        return pid if qos else None

    def subscribe(self, topic, qos=0):
        # topic: a filter (str or bytes), or a list of (filter, qos) for one SUBSCRIBE
        return self._sub(0x82, topic, qos)

    def unsubscribe(self, topic):
        # topic: a filter, or a list of filters for one UNSUBSCRIBE
        return self._sub(0xA2, topic, 0)

    def _sub(self, op, topic, qos, p=0):
        # SUBSCRIBE (op 0x82) or UNSUBSCRIBE (0xA2) [MQTT-3.8, MQTT-3.10]: the packet id
        # (p: the one it had, for a re-send), then each filter, and in a SUBSCRIBE its
        # requested QoS byte
        n = 2
        fs = []
        for t in topic if isinstance(topic, list) else [topic]:
            q = qos
            if isinstance(t, tuple):
                t, q = t
            t = _topic(t, q, 1)
            q = b"" if op & 0x20 else bytes((q,))  # its requested QoS
            n += len(t) + 2 + len(q)
            fs.append((t, q))
        if not fs:
            raise MQTTException(_EARG)
        self._start(op, n)
        pid = self._pid(p)
        self._put(pid)
        for t, q in fs:
            self._put(t, 1)
            self._put(q)
        self._write()
        return pid

    # -- reading: a resumable state machine that takes one packet at a time

    def _fail(self, n):
        self._close()
        raise MQTTException(n)

    def check_msg(self):
        # Handle at most one incoming packet, if it is complete; never blocks. Returns
        # its type (0x30 PUBLISH, 0x40 PUBACK, ..., 0xD0 PINGRESP) or None.
        if not self.sock:
            raise MQTTException(_ECONNOT)
        r = self._rx()
        now = ticks_ms()
        # the timers are looked at every 50 ms at most: an idle call costs little, and a
        # burst of messages in flight does not make every call go through all of them
        if 0 < ticks_diff(self._ts, now) <= 50:
            return r
        self._ts = ticks_add(now, 50)
        ka = self.keepalive * 1000
        if ka and self.sock:
            p = self._pp  # a PINGRESP is awaited since p (or bytes arrived then)
            if p is not None and ticks_diff(now, p) > ka:  # a dead link
                self._fail(_EKEEPALIVE)
            # send something within the keep alive [MQTT-3.1.2-23]; ping a silent link
            ka = ka * 3 // 4  # (a half-open link is found within 1.75 keepalive)
            if ticks_diff(now, self._ls) >= ka or p is None and ticks_diff(now, self.last_cpacket) >= ka:
                self.ping()
        d = self.rcv_pids  # flows past message_timeout
        while True:  # a status may change d: look again after each
            for p in d:
                if ticks_diff(now, d[p]) >= 0:
                    break
            else:
                break
            del d[p]
            self.cbstat(p, 0)
        return r

    def wait_msg(self):
        # Block until one packet is handled, keeping the connection alive meanwhile.
        while True:
            r = MQTTClient.check_msg(self)  # (a subclass's may not raise when the link dies)
            if r or not self.sock:  # (or a subclass closed it, e.g. robust2 on a timeout)
                return r
            self._wait(_POLLIN, 200)

    def _rx(self):
        # Runs the receive state machine as far as the data that has arrived allows;
        # returns the type of the packet it completed and handled, or None.
        while True:
            n = self._rn
            w = self._rw
            if n < w:  # read towards w bytes
                try:  # a memoryview slice only mid-packet: an idle call allocates nothing
                    r = self.sock.readinto(self._rm[n:] if n else self._rb, w - n)
                except OSError:
                    self._close()
                    raise
                if r == 0:  # (None: nothing yet)
                    self._fail(_ECONCLOSE)
                if r:
                    n += r
                    self._rn = n
                    if self._pp is not None:  # alive: the PINGRESP is behind these bytes
                        self._pp = ticks_ms()
                if n < w:
                    return None
            b = self._rb
            st = self._st
            if not st:  # the fixed header: type, then 1 to 4 bytes of Remaining Length
                if b[n - 1] >> 7:  # more length bytes follow
                    if n > 4:
                        self._fail(_EPROTO)
                    self._rw = n + 1
                    continue
                op = self._op = b[0]
                rem = 0
                for i in range(n - 1, 0, -1):
                    rem = rem << 7 | b[i] & 0x7F
                m = self.max_size
                if self._ca:  # connect() waits for CONNACK and nothing else
                    if op != 0x20 or rem != 2:
                        self._fail(_ECONLENGTH)
                # what a client may receive: type, flags and length [MQTT-2.2.2]
                elif not (
                    op & 0xF0 == _PUBLISH and op & 6 != 6
                    or op in (_PUBACK, _PUBREC, _PUBREL, _PUBCOMP, _UNSUBACK) and rem == 2
                    or op == _SUBACK and 2 < rem <= m
                    or op == _PINGRESP and not rem
                ):
                    self._fail(_EPROTO)
                # a PUBLISH over max_size: its first max_size bytes are read, the rest skipped
                if op & 0xF0 != _PUBLISH or rem < m:
                    m = rem
                if m > len(b):  # (a MemoryError here leaves the state as it was)
                    b = bytearray(m)
                    self._rm = memoryview(b)
                    self._rb = b
                    self._tc = b""  # its view was of the old buffer
                self._st = 1
                self._rn = 0
                self._rw = m
                self._big = rem - m
                continue
            op = self._op
            t = op & 0xF0
            q = op >> 1 & 3
            v = b[0] << 8 | b[1]  # a PUBLISH's topic length; the packet id of the others
            if st == 1 and t == _PUBLISH:
                p = v + (4 if q else 2)  # topic length, topic, pid if QoS > 0 [MQTT-3.3.2]
                if p > n:
                    self._fail(_ETOOBIG if self._big else _EPROTO)
                pid = self._pin = q and b[p - 2] << 8 | b[p - 1]
                if q and not pid or not v:  # pid 0, or no topic [MQTT-4.7.3-1]
                    self._fail(_EPROTO)
            if self._big:  # the rest of an over-size PUBLISH, skipped a buffer at a time
                m = min(self._big, len(b))
                self._st = 2
                self._rn = 0
                self._rw = m
                self._big -= m
                continue
            self._st = self._rn = 0
            self._rw = 2
            self.last_cpacket = ticks_ms()
            self._pp = None
            if t == _PUBLISH:
                pid = self._pin
                s = self.sock
                q2 = self._q2
                if st == 2:  # over max_size: skipped, acknowledged, reported
                    self.cbstat(pid, 4)
                # QoS 2: a pid already delivered is not delivered again [MQTT-4.3.3-2]
                elif self.cb and (q < 2 or pid not in self._q2):
                    m = self._rm
                    tc = self._tc
                    if len(tc) != v or tc != self._tv:  # a view made once per new topic
                        self._tv = m[2 : 2 + v]
                        tc = self._tc = bytes(self._tv)
                    self.cb(tc, bytes(m[p:n]), op & 1 > 0, op & 8 > 0)
                if q == 2:  # delivered: not again in this session, even if a callback
                    q2.add(pid)  # reconnected to it
                if q and self.sock is s:  # (not if a callback closed or replaced the link)
                    self._send2(0x30 + (q << 4), pid)  # PUBACK, or PUBREC for QoS 2
            elif op == _PUBREL:  # QoS 2 received, last step [MQTT-4.3.3]
                self._q2.discard(v)
                self._send2(_PUBCOMP, v)
            elif t == _PUBREC:  # QoS 2 sent, second step: release the message
                if v in self.rcv_pids:
                    self._pid(v)
                self._send2(_PUBREL, v)
            elif 0x20 < t < _PINGRESP:  # PUBACK, PUBCOMP, UNSUBACK; SUBACK: a code per filter
                cs = bytes(b[2:n]) if n > 2 else b"\0"  # SUBACK: its codes, kept from callbacks that read
                for c in cs:
                    if c > 2 and c != 0x80:  # not a granted QoS, nor failure [MQTT-3.9.3]
                        self._fail(_EPROTO)
                k = self.rcv_pids.pop(v, None) is None  # not awaited
                for c in cs:
                    if not k:
                        self.cbstat(v, c >> 6 | 1)  # 1, or 3 for 0x80
                if k:
                    self.cbstat(v, 2)
            return t
