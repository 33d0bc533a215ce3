# umqtt.simple2: a small MQTT 3.1.1 client whose check_msg() never blocks.
# MIT license; see LICENSE. Runs unchanged on MicroPython >= 1.19 and CPython >= 3.8.
import socket
import select
# The builtins of the frequent paths, as names of this module: a builtin is looked for
# in the module's names first, and that miss, in a nearly full table, scans most of it
# (about 500 instructions for len()); a name of the module is found at once.
from builtins import bytes, len, type
from . import MQTTException, _encode, _check_qos, _utf8

try:  # MicroPython: const() is built into its compiler, nothing to import for it
    from time import ticks_ms, ticks_add, ticks_diff
except ImportError:  # CPython: the few MicroPython names used here, and its sockets
    from ._cpython import *  # const, ticks_ms, ticks_add, ticks_diff, socket
try:
    from gc import collect, mem_free  # MicroPython: how much a message may take to be held
except ImportError:
    mem_free = None

# packet types, with the flags each must carry [MQTT-2.2.1, MQTT-2.2.2]
_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_PUBREC = const(0x50)
_PUBREL = const(0x62)
_PUBCOMP = const(0x70)
_SUBSCRIBE = const(0x82)
_SUBACK = const(0x90)
_UNSUBSCRIBE = const(0xA2)
_UNSUBACK = const(0xB0)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_RETAIN = const(0x01)  # PUBLISH flags [MQTT-3.3.1]
_DUP = const(0x08)
# statuses for the status callback (errno.S*)
_STIMEOUT = const(0)
_SDELIVERED = const(1)
_SUNKNOWNPID = const(2)
_SOVERSIZE = const(4)
# error codes (errno.E*)
_ECONCLOSE = const(1)
_ESTRTOLONG = const(4)
_EKEEPALIVE = const(7)
_ECONNOT = const(28)
_ECONLENGTH = const(29)
_ECONTIMEOUT = const(30)
_EPROTO = const(50)
_EARG = const(51)
_ETOOBIG = const(52)
# the receive state machine: what the bytes being read are
_RX_HEADER = const(0)  # the fixed header: type, then 1 to 4 bytes of Remaining Length
_RX_BODY = const(1)  # the rest of the packet (of an over-size PUBLISH: its first part)
_RX_SKIP = const(2)  # the rest of an over-size PUBLISH, read and thrown away
# the link: connecting is a series of steps, each taken without waiting
_LINK_DOWN = const(0)
_LINK_TCP = const(1)  # the TCP connect is under way
_LINK_CONNECT = const(2)  # CONNECT is being written (with TLS: the handshake with it)
_LINK_CONNACK = const(3)  # CONNECT is out; CONNACK awaited, nothing else accepted
_LINK_UP = const(4)
_POLLIN = const(1)
_POLLOUT = const(4)
_OUT_SIZE = const(128)  # bytes of the outgoing packet buffer
_IN_SIZE = const(64)  # bytes of the incoming packet buffer to start with
_IN_KEEP = const(2048)  # a buffer grown past this is given back after its packet
_SUBACK_MOST = const(4096)  # the largest SUBACK taken without a max_size (a code per filter)
_TIMER_EVERY = const(50)  # ms between looks at the keep-alive and message timers
_MAX_REMAINING = const(268435455)  # what 4 bytes of Remaining Length can say
_HELD_MOST = const(1 << 19)  # the most an incoming message may take by default
_IN_PROGRESS = (115, 119, 11)  # a non-blocking connect() under way: EINPROGRESS (Linux,
# lwIP), EAGAIN
_NOTHING = object()  # no topic published yet


def pid_gen(pid=0):
    """Packet ids 1 to 65535 and round again, after pid; 0 is not a packet id
    [MQTT-2.3.1-1]."""
    while True:
        pid = pid % 65535 + 1
        yield pid


def topic_name(topic, check_utf8=True):
    """topic as bytes, if it is a valid topic name to publish to: not empty, no wildcard,
    no U+0000 [MQTT-3.3.2-2, MQTT-4.7.3]; else MQTTException(EARG)."""
    t = bytes(_encode(topic))  # (the same object for bytes; `in` fails on a bytearray)
    if check_utf8:
        _utf8(t)
    if not t or 0 in t or 35 in t or 43 in t:  # '#', '+'
        raise MQTTException(_EARG)
    return t


def _check_u16(n):
    # n, if it is an int that fits 2 bytes
    if type(n) is not int or n >> 16:  # (-1 >> 16 is -1)
        raise MQTTException(_EARG)
    return n


def _ms(seconds):
    return -1 if seconds is None else int(seconds * 1000)


class MQTTClient:
    """An MQTT 3.1.1 client over one TCP (or TLS) connection. No call waits for the
    broker's answer to a request; connect() waits for CONNACK, wait_msg() for a packet.

    Subclasses may override _read(n) and _write(bytes_wr, length=-1), calling super(), to
    see every byte (as 2.2.0 allowed), and the hooks on_ack(), on_timeout(), on_pubrec()
    and on_qos2(), which robust2 uses."""

    # Rarely used state is kept as class defaults; what the frequent calls read is set
    # in __init__ (an instance attribute is found with one lookup, not two).
    session_present = False  # CONNACK's flag, once connected
    granted = b""  # the return codes of the last SUBACK: a granted QoS, or 0x80 [MQTT-3.9.3]
    _will = ()  # (topic, message) set by set_last_will() ...
    _will_flags = 0  # ... and its CONNECT flags
    _addr = None  # getaddrinfo()'s answer, reused by start_connect() until forgotten
    _link_start = 0  # ticks_ms when the connection attempt started
    _connect_packet = b""  # CONNECT, while it is being written ...
    _connect_sent = 0  # ... and how much of it is out
    _poll = None
    _rx_skip = 0  # bytes of an over-size PUBLISH still to be thrown away
    _rx_pid = 0  # the packet id of the QoS > 0 PUBLISH being read ...
    _rx_start = 0  # ... and where its payload starts in _in
    _stall_start = None  # ticks_ms when the packet being written first had to wait

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
        max_size=None,
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
        self.max_size = max_size  # None: as much as the platform can hold
        self.newpid = pid_gen()
        self.rcv_pids = {}  # pid -> ticks_ms deadline of each flow awaiting its answer
        self._qos2_in = set()  # incoming QoS 2 pids delivered, awaiting PUBREL
        self.last_ping = self.last_cpacket = ticks_ms()
        self._out = bytearray(_OUT_SIZE)  # outgoing packets are built here: one write() each
        self._out_len = 0
        self._header = bytearray(5)  # the fixed header of the packet being read ...
        self._set_buffer(bytearray(_IN_SIZE))  # ... and its body
        self._rx_state = _RX_HEADER
        self._rx_into = self._header  # where the next bytes go ...
        self._rx_want = 2  # ... how many more this state needs ...
        self._rx_got = 0  # ... and how many it has
        self._rx_type = 0  # the packet's first byte: type and flags
        self._readinto = None  # the socket's readinto(), or _traced_readinto()
        self.cb = None  # f(topic, msg, retained, dup), set by set_callback()
        self.sock = None
        self._link = _LINK_DOWN
        self.msg_qos = 0  # the QoS of the message being delivered to cb
        self._last_write = 0  # ticks_ms of the last packet out
        self._ping_sent = None  # ticks_ms since a PINGRESP is awaited (or bytes last came)
        self._timers_due = 0  # ticks_ms of the next look at the timers
        self._pub_source = _NOTHING  # the last topic published, as given (str or bytes) ...
        self._pub_topic = _NOTHING  # ... as validated bytes
        self._pub_utf8 = False  # ... and whether its UTF-8 was checked (QoS >= 1)
        # a subclass that traces bytes (2.2.0's _read/_write hooks) gets every one of them
        cls = type(self)
        self._trace_read = cls._read is not MQTTClient._read
        self._trace_write = cls._write is not MQTTClient._write

    def set_callback(self, f):
        """f(topic, msg, retained, dup) for every incoming PUBLISH (bytes, bytes, bool, bool)."""
        self.cb = f

    def set_callback_status(self, f):
        """f(pid, status): the outcome of each flow (errno.S*)."""
        self.cbstat = f

    def cbstat(self, pid, status):
        pass

    def set_last_will(self, topic, msg, retain=False, qos=0):
        """The will, sent in every later CONNECT [MQTT-3.1.2.5]."""
        _check_qos(qos)
        self._will = (topic_name(topic), _encode(msg))
        self._will_flags = 0x04 | qos << 3 | (0x20 if retain else 0)  # flag, QoS, retain

    # -- hooks: a subclass's view of each flow (robust2 keeps its messages with them)

    def on_ack(self, pid, status):
        """An answer ended flow pid (PUBACK, PUBCOMP, UNSUBACK; SUBACK once per filter),
        or came for a pid not in flight (SUNKNOWNPID)."""
        self.cbstat(pid, status)

    def on_timeout(self, pid):
        """Flow pid got no answer within message_timeout; it is forgotten."""
        self.cbstat(pid, _STIMEOUT)

    def on_pubrec(self, pid):
        """PUBREC for our QoS 2 message pid; PUBREL goes out after this returns."""

    def on_qos2(self, pid, held):
        """An incoming QoS 2 message pid is held (held=True, before PUBREC goes out) or
        released (False, before PUBCOMP goes out)."""

    def on_connect(self, session_present):
        """CONNACK accepted the connection; called before connect() returns, or from the
        check_msg() that read it."""

    def on_tick(self, now):
        """check_msg() looks at its timers, every 50 ms at most while connected: now is
        its ticks_ms()."""

    def on_link_error(self, e):
        """check_msg() met exception e (the link is closed if it was a connection
        failure, or e came from a callback). Raises it; a subclass may keep it instead
        and return None."""
        raise e

    # -- writing: the packets are built by the module functions at the end (_begin(),
    # _put_u16(), ...); each goes out through _write()

    def _write(self, bytes_wr, length=-1):
        """Writes bytes_wr[:length] (all of it if length < 0) within socket_timeout from
        the start of the packet: the network may take it a piece at a time. Returns the
        number of bytes written."""
        if length < 0:
            length = len(bytes_wr)
        sock = self.sock
        done = 0
        while done < length:
            try:
                r = sock.write(bytes_wr, done, length - done)
            except OSError:
                self._close()
                raise
            if r:
                done += r
                continue
            wait = _ms(self.socket_timeout)
            now = ticks_ms()
            if self._stall_start is None:
                self._stall_start = now
            if wait >= 0:  # what is left of it
                wait -= ticks_diff(now, self._stall_start)
                if wait <= 0:
                    self._fail(_ECONTIMEOUT)  # part of a packet is out: the stream is lost
            self._wait(_POLLOUT, 100 if wait < 0 else min(wait, 100))
        self._last_write = ticks_ms()
        return length

    def _read(self, n):
        """Up to n bytes that have arrived, None if none has; EOF raises ECONCLOSE."""
        try:
            data = self.sock.read(n)
        except OSError:
            self._close()
            raise
        if data == b"":
            self._fail(_ECONCLOSE)
        return data

    def _wait(self, flags, ms):
        # until the socket is ready for flags (_POLLIN, _POLLOUT), ms at most (-1: no limit)
        self._poll.modify(self.sock, flags)
        self._poll.poll(ms)

    def _new_pid(self):
        # a pid no flow in flight uses [MQTT-2.3.1-2]
        pid = next(self.newpid)
        while pid in self.rcv_pids:
            pid = next(self.newpid)
        return pid

    # -- connection

    def connect(self, clean_session=True):
        """Connects and waits for CONNACK, all within socket_timeout (TCP connect, TLS
        handshake and CONNACK included). Returns CONNACK's session-present flag (0 or 1);
        a refusal raises MQTTException(20 + its code)."""
        self._addr = None  # resolved afresh each time, as 2.2.0 does
        self.start_connect(clean_session)
        while self._advance_link() != _CONNACK:
            self._link_wait(10)
        return self.session_present

    def _link_wait(self, ms):
        # until the connection attempt can go a step further, ms at most
        self._wait(_POLLIN if self._link == _LINK_CONNACK else _POLLOUT, ms)

    def start_connect(self, clean_session=True):
        """Starts connecting and returns at once (name resolution aside: the address is
        resolved once and reused until forget_address()). Each later check_msg() takes
        the connection a step further without waiting; it returns 0x20 when CONNACK has
        come, and session_present then holds its flag. socket_timeout bounds the whole
        attempt, across calls; a failure raises from the check_msg() that finds it."""
        # CONNECT [MQTT-3.1], built first (bad arguments: refused before any socket):
        # protocol name, level 4, flags, keep alive, then the client id, the will's topic
        # and message, user name, password
        fields = [_encode(self.client_id)]
        fields += self._will
        flags = (0x02 if clean_session else 0) | self._will_flags
        if self.user is not None:
            fields.append(_encode(self.user))
            flags |= 0x80
            if self.pswd is not None:  # no password without a user name [MQTT-3.1.2-22]
                fields.append(_encode(self.pswd))
                flags |= 0x40
        keepalive = _check_u16(self.keepalive)  # 0 to 65535 s [MQTT-3.1.2.10]
        body = bytearray(b"\x00\x04MQTT\x04")
        body.append(flags)
        body.append(keepalive >> 8)
        body.append(keepalive & 0xFF)
        for f in fields:
            body.append(len(f) >> 8)
            body.append(len(f) & 0xFF)
            body += f
        n = len(body)
        packet = bytearray((_CONNECT,))
        while n > 0x7F:
            packet.append(n & 0x7F | 0x80)
            n >>= 7
        packet.append(n)
        if self.ssl:
            from .tls import check

            check(self)  # e.g. no CA to verify with: refused before any socket
        self._close()
        addr = self._addr
        if addr is None:
            addr = socket.getaddrinfo(self.server, self.port, 0, socket.SOCK_STREAM)
            if not addr:  # some firmware answers [] for a name it cannot resolve
                raise OSError(-2)
            addr = self._addr = addr[0]
        self._link_start = ticks_ms()
        sock = self.sock = socket.socket(addr[0], addr[1], addr[2])
        try:
            sock.setblocking(False)
            try:
                sock.connect(addr[-1])
            except OSError as e:
                if e.args[0] not in _IN_PROGRESS:
                    raise
            poll = self._poll = select.poll()
            poll.register(sock, _POLLOUT)
        except:
            self._close()
            raise
        self._connect_packet = packet + body
        self._connect_sent = 0
        self._link = _LINK_TCP
        self._rx_state = _RX_HEADER
        self._rx_into = self._header
        self._rx_want = 2
        self._rx_got = 0
        self._rx_skip = 0
        self._ping_sent = None
        self._bind_reader()

    def _bind_reader(self):
        # what _receive() reads with: the socket's own readinto(), unless a subclass
        # traces the bytes read
        self._readinto = self._traced_readinto if self._trace_read else self.sock.readinto

    def _traced_readinto(self, buf, n):
        data = self._read(n)
        if not data:
            return None
        buf[: len(data)] = data
        return len(data)

    def forget_address(self):
        """The next start_connect() resolves the server's name again."""
        self._addr = None

    def _advance_link(self):
        # one step of the connection attempt, without waiting; 0x20 once CONNACK is in
        if ticks_diff(ticks_ms(), self._link_start) >= _ms(self.socket_timeout) >= 0:
            self._fail(_ECONTIMEOUT)
        if self._link == _LINK_TCP:
            # Without TLS the first write of CONNECT finds out whether the TCP connect
            # is done ("would block" until then; the reason if it failed). TLS wraps a
            # connected socket: writable once connected, or failed (the first write of
            # the handshake then says how).
            if self.ssl:
                self._poll.modify(self.sock, _POLLOUT)
                if not self._poll.poll(0):
                    return None
                from .tls import wrap

                try:
                    self.sock = wrap(self, self.sock)
                except:
                    self._close()
                    raise
                self._poll = select.poll()
                self._bind_reader()
            self._poll.register(self.sock, _POLLIN)
            try:
                self.sock.setsockopt(6, 1, 1)  # TCP_NODELAY: no Nagle stall between packets
            except (OSError, AttributeError):  # (an SSL socket may not pass it on)
                pass
            self._link = _LINK_CONNECT
        if self._link == _LINK_CONNECT:
            packet = self._connect_packet
            if self._trace_write:  # a tracing subclass sees CONNECT whole
                self._stall_start = self._link_start
                self._write(packet, len(packet))
            else:
                try:
                    r = self.sock.write(packet, self._connect_sent, len(packet) - self._connect_sent)
                except Exception as e:  # refused, reset; the TLS handshake failed (on
                    if not isinstance(e, OSError) or e.args[0] not in _IN_PROGRESS:
                        self._close()  # MicroPython a bad certificate is a ValueError)
                        raise
                    r = None  # (lwIP: not connected yet)
                if r:
                    self._connect_sent += r
                if self._connect_sent < len(packet):
                    return None
            self._connect_packet = b""
            self._last_write = ticks_ms()
            self._link = _LINK_CONNACK
        try:  # CONNACK, read as any packet is (see check_msg)
            got = self._readinto(self._rx_into, self._rx_want)
        except OSError:
            self._close()
            raise
        return _receive(self, got, ticks_ms())

    def _close(self):
        try:
            self.sock.close()
        except (OSError, AttributeError):  # (or no socket)
            pass
        self.sock = self._readinto = None
        self._link = _LINK_DOWN

    def disconnect(self):
        """Sends DISCONNECT if connected, best effort and without waiting; always closes."""
        if self._link == _LINK_UP:
            try:
                if self._trace_write:
                    self._write(b"\xe0\x00", 2)
                else:
                    self.sock.write(b"\xe0\x00")
            except (OSError, MQTTException):
                pass
        self._close()

    def is_connected(self):
        """True once CONNACK has come, until the link is closed."""
        return self._link == _LINK_UP

    def ping(self):
        """Sends PINGREQ now."""
        _begin(self, _PINGREQ, 0)
        _flush(self)
        self.last_ping = self._last_write
        if self._ping_sent is None:
            self._ping_sent = self._last_write

    def _fail(self, code):
        self._close()
        raise MQTTException(code)

    # -- requests: none of them waits for its answer

    def publish(self, topic, msg, retain=False, qos=0, dup=False, pid=0):
        """Sends a PUBLISH; returns its pid for QoS 1 and 2, else None. pid: for a
        re-send, the packet id the message had [MQTT-4.4.0-1]; dup only with QoS > 0
        [MQTT-3.3.1-2]."""
        if qos:
            _check_qos(qos)
            if pid:
                _check_u16(pid)
            first = _PUBLISH | qos << 1 | (_DUP if dup else 0)
        elif type(qos) is not int:
            raise MQTTException(_EARG)
        else:
            first = _PUBLISH
        if retain:
            first |= _RETAIN
        if topic is self._pub_source and (self._pub_utf8 or not qos):
            t = self._pub_topic  # (_publish_topic()'s first look, without the call)
        else:
            t = _publish_topic(self, topic, qos)
        if type(msg) is not bytes:
            msg = _encode(msg, _MAX_REMAINING)
        return _send_publish(self, first, t, msg, pid)

    def subscribe(self, topic, qos=0, pid=0):
        """Sends SUBSCRIBE; returns its pid. topic: a filter (str or bytes), or a list of
        filters or (filter, qos) tuples for one SUBSCRIBE. The outcome comes to the
        status callback once per filter: SDELIVERED (granted; see granted) or SREFUSED."""
        from . import subscriptions

        return _send_filters(self, _SUBSCRIBE, subscriptions.topic_filters(topic, qos), pid)

    def unsubscribe(self, topic, pid=0):
        """Sends UNSUBSCRIBE for a filter, or a list of filters; returns its pid."""
        from . import subscriptions

        return _send_filters(self, _UNSUBSCRIBE, subscriptions.topic_filters(topic), pid)

    # -- reading

    def check_msg(self):
        """Handles at most one incoming packet, if it has fully arrived; never blocks.
        Returns its type (0x30 PUBLISH, 0x40 PUBACK, ..., 0xD0 PINGRESP; 0x20 when a
        start_connect() attempt got its CONNACK), or None. Keeps the connection alive
        and reports flows past message_timeout."""
        try:
            if self._link != _LINK_UP:
                if self._link == _LINK_DOWN:
                    raise MQTTException(_ECONNOT)
                return self._advance_link()
            now = ticks_ms()  # (the time the bytes read now came)
            try:  # (here, not in a call: see the note above _receive)
                got = self._readinto(self._rx_into, self._rx_want)
            except OSError:
                self._close()
                raise
            r = None if got is None else _receive(self, got, now)
            # The timers are looked at every _TIMER_EVERY ms: due is at most that far
            # ahead of now, so a difference far below it means the ticks wrapped round.
            late = now - self._timers_due
            if (late >= 0 or late < -2 * _TIMER_EVERY) and self.sock:
                self._timers_due = ticks_add(now, _TIMER_EVERY)
                _check_timers(self, now)
                self.on_tick(now)
            return r
        except Exception as e:  # (and a callback's: a subclass tells them apart)
            return self.on_link_error(e)

    def wait_msg(self):
        """Blocks until one packet is handled, keeping the connection alive meanwhile.
        Returns its type; None when the connection was closed (by a subclass's
        check_msg(), which may keep the failure instead of raising it)."""
        while True:
            r = self.check_msg()
            if r or not self.sock:
                return r
            if self._link == _LINK_UP:
                self._wait(_POLLIN, _TIMER_EVERY * 4)
            else:
                self._link_wait(_TIMER_EVERY * 4)

    def _skip_more(self):
        # the next piece of an over-size PUBLISH's rest, to be thrown away
        if self._ping_sent is not None:  # alive (as for a partial read)
            self._ping_sent = ticks_ms()
        want = self._rx_want = min(self._rx_skip, len(self._in))
        self._rx_skip -= want
        self._rx_got = 0
        self._rx_into = self._in

    def _long_length(self, got):
        # the Remaining Length in the header's got bytes, 7 bits a byte, least
        # significant first [MQTT-2.2.3]
        length = 0
        for i in range(got - 1, 0, -1):
            length = length << 7 | self._header[i] & 0x7F
        return length

    def _room_for(self, first, length):
        # how much of a body of length bytes _in will hold, grown if need be: all of it,
        # or of a PUBLISH what max_size allows (its topic and pid at least, to answer it)
        held = length
        if first & 0xF0 == _PUBLISH:
            most = self.max_size
            if most is None:  # as much as the platform can hold (and as much again for
                most = _HELD_MOST  # the copy handed to cb)
                if mem_free:
                    collect()
                    most = min(mem_free() // 2, most)
            if held > most:
                held = most
                if not held:  # not even the topic's length fits
                    self._fail(_ETOOBIG)
        if held > len(self._in):
            try:
                self._set_buffer(bytearray(held))
            except MemoryError:  # a PUBLISH: what fits then, the rest skipped
                if first & 0xF0 != _PUBLISH:
                    self._fail(_EPROTO)  # (a SUBACK that large is not an answer of ours)
                held = len(self._in)
        return held

    def _set_buffer(self, buf):
        self._in = buf
        self._in_view = memoryview(buf)
        # the last topic received, reused while it repeats: forgotten (its view was of
        # the old buffer)
        self._in_topic = b""
        self._in_topic_view = b""
        self._in_topic_key = None

    def _handle_connack(self):
        # [MQTT-3.2]: session present, then the return code
        flags = self._in[0]
        code = self._in[1]
        if code:  # refused, and why
            self._close()
            raise MQTTException(20 + code if code < 6 else 20, code)
        if flags > 1:  # reserved flags [MQTT-3.2.2.1]
            self._fail(_EPROTO)
        self.session_present = flags
        if not flags:
            # a new session: no QoS 2 message is half received (a new set: one a
            # callback still holds is the old session's)
            held = self._qos2_in
            self._qos2_in = set()
            for pid in held:
                self.on_qos2(pid, False)
        self._link = _LINK_UP
        self._timers_due = self.last_cpacket
        self.on_connect(flags)


# -- receiving: the timers' look, the state machine (_receive) and the handlers of the
# frequent packets, module functions as the writing ones below are. The rare steps
# (_skip_more, _long_length, _room_for, _set_buffer, _handle_connack) stay methods: a
# builtin not imported above (memoryview(), min()) is first looked for, and missed, in
# this module's names, a table that only grows once full, and more names here make
# every such miss longer.
#
# Frames: MicroPython puts a function's locals and stack on the heap when they
# take more than 11 words, at every call. A try takes 3 words and reserves stack,
# and one that names its exception ("except E as e") always goes over. Once such a
# frame is freed, the next allocation searches the heap from its hole, past
# everything allocated since the last collection. check_msg()'s frame is on the
# heap (it hands the exception to on_link_error), so it makes the first read
# itself: an idle call is that read and the timers' look. (The read is written out
# where it is needed, in check_msg(), _receive() and _advance_link(): a call costs
# more than its five lines.)


def _check_timers(c, now):
    # check_msg()'s look, every _TIMER_EVERY ms: the keep-alive, and the flows past
    # message_timeout
    keepalive = c.keepalive * 1000
    if keepalive:
        sent = c._ping_sent
        if sent is not None and ticks_diff(now, sent) > keepalive:  # a dead link
            c._fail(_EKEEPALIVE)
        # something goes out within the keep alive [MQTT-3.1.2-23], and a silent link
        # is pinged: a half-open link is found within 1.75 keep alive
        keepalive = keepalive * 3 // 4
        if ticks_diff(now, c._last_write) >= keepalive or (
            sent is None and ticks_diff(now, c.last_cpacket) >= keepalive
        ):
            c.ping()
    flows = c.rcv_pids
    while flows:  # a hook may change flows: look again after each
        for pid in flows:
            if ticks_diff(now, flows[pid]) >= 0:
                break
        else:
            return
        del flows[pid]
        c.on_timeout(pid)


def _receive(c, got, now):
    # Runs the receive state machine as far as the bytes that have arrived allow:
    # the fixed header, then the body into _in (of an over-size PUBLISH, its first
    # part, the rest read and thrown away). got: what the last read into the
    # current state's buffer returned (None: nothing yet; 0: the end of the
    # stream); now: the ticks_ms() of that read. Returns the type of the packet it
    # completed and handled, or None.
    while True:
        if not got:  # None: nothing yet
            if got == 0:
                c._fail(_ECONCLOSE)
            return None
        want = c._rx_want
        r = got
        got = c._rx_got + r
        if r < want:
            # The rest later, into a view of what is missing (mid-packet only: an
            # idle call allocates nothing). The link is alive: a PINGRESP awaited
            # may be behind these bytes (a long packet does not make it look dead).
            c._rx_got = got
            c._rx_want = want - r
            c._rx_into = memoryview(c._rx_into)[r:]
            if c._ping_sent is not None:
                c._ping_sent = now
            return None
        state = c._rx_state
        if state == _RX_HEADER:
            header = c._header
            if header[got - 1] & 0x80:  # more length bytes follow
                if got == 5:
                    c._fail(_EPROTO)  # 4 at most [MQTT-2.2.3]
                c._rx_got = got
                c._rx_want = 1
                c._rx_into = memoryview(header)[got:]
            else:
                # The fixed header is in: its type, flags and length must be what a
                # client may receive [MQTT-2.2.2]; the body goes into _in, grown if
                # need be.
                first = c._rx_type = header[0]
                got = header[1] if got == 2 else c._long_length(got)
                if c._link == _LINK_CONNACK:  # CONNACK first, and nothing else [MQTT-3.2]
                    if first != _CONNACK or got != 2:
                        c._fail(_ECONLENGTH)
                elif first & 0xF0 == _PUBLISH:
                    # no QoS 3 [MQTT-3.3.1-4], and a body (its topic is checked with it)
                    if first & 0x06 == 0x06 or not got:
                        c._fail(_EPROTO)
                elif first == _SUBACK:  # a pid and a code at least; held whole, within max_size
                    if got < 3 or got > (_SUBACK_MOST if c.max_size is None else c.max_size):
                        c._fail(_EPROTO)
                elif first == _PINGRESP:
                    if got:
                        c._fail(_EPROTO)
                elif got != 2 or first not in (_PUBACK, _PUBREC, _PUBREL, _PUBCOMP, _UNSUBACK):
                    c._fail(_EPROTO)
                if not got:  # no body: the packet is whole
                    break
                want = got  # what _in takes of the body (of an over-size PUBLISH: a part)
                # (_in holds _IN_SIZE bytes at least)
                if got > _IN_SIZE and got > len(c._in) or (
                    first & 0xF0 == _PUBLISH and c.max_size is not None
                ):
                    want = c._room_for(first, got)
                c._rx_state = _RX_BODY
                c._rx_into = c._in
                c._rx_want = want
                c._rx_got = 0
                c._rx_skip = got - want
        elif state == _RX_BODY:
            first = c._rx_type
            if first & 0xF0 == _PUBLISH:
                # its topic and pid, checked: a topic, a pid > 0 if QoS > 0
                # [MQTT-3.3.2, MQTT-4.7.3-1, MQTT-2.3.1-1]; of an over-size PUBLISH,
                # in the first part, to answer it
                b = c._in
                k = b[0] << 8 | b[1]
                start = c._rx_start = k + (4 if first & 0x06 else 2)
                if start > got:
                    c._fail(_ETOOBIG if c._rx_skip else _EPROTO)
                if first & 0x06:
                    pid = c._rx_pid = b[start - 2] << 8 | b[start - 1]
                    if not pid:
                        c._fail(_EPROTO)
                if not k:
                    c._fail(_EPROTO)
            if not c._rx_skip:
                break  # whole
            c._rx_state = _RX_SKIP  # the rest is thrown away, a buffer at a time
            c._skip_more()
        elif c._rx_skip:  # more of an over-size PUBLISH to throw away
            c._skip_more()
        else:  # an over-size PUBLISH skipped
            got = -1
            break
        try:  # the next bytes for the new state
            got = c._readinto(c._rx_into, c._rx_want)
        except OSError:
            c._close()
            raise
    # a whole packet: its body is got bytes in _in (-1: skipped)
    first = c._rx_type
    c._rx_state = _RX_HEADER  # the next packet
    c._rx_into = c._header
    c._rx_want = 2
    c._rx_got = 0
    c.last_cpacket = now
    c._ping_sent = None
    if first & 0xF0 == _PUBLISH:
        _handle_publish(c, first, got)
        return _PUBLISH
    return _handle(c, first, got)


def _handle(c, first, length):
    # one whole packet, not a PUBLISH: its body is length bytes in _in
    if first == _PINGRESP:
        pass
    elif first == _CONNACK:
        c._handle_connack()
    else:
        pid = c._in[0] << 8 | c._in[1]
        if first == _PUBREL:  # QoS 2 received, last step [MQTT-4.3.3]
            c._qos2_in.discard(pid)
            c.on_qos2(pid, False)
            _send_pid(c, _PUBCOMP, pid)
        elif first == _PUBREC:  # QoS 2 sent, second step: release the message
            if pid in c.rcv_pids:
                _track(c, pid)
                c.on_pubrec(pid)
            _send_pid(c, _PUBREL, pid)
        elif first == _SUBACK:
            from .subscriptions import suback

            suback(c, pid, length)
        # PUBACK, PUBCOMP, UNSUBACK: the flow is complete (or was not ours)
        elif c.rcv_pids.pop(pid, None) is None:
            c.on_ack(pid, _SUNKNOWNPID)
        else:
            c.on_ack(pid, _SDELIVERED)
        if len(c._in) > _IN_KEEP:  # a large buffer is not kept for the next packet
            c._set_buffer(bytearray(_IN_SIZE))
    return first & 0xF0


def _handle_publish(c, first, length):
    # a whole PUBLISH: its body is length bytes in _in (-1: an over-size one, skipped)
    qos = first & 0x06  # (the QoS, times 2)
    pid = 0
    if qos:
        # read now: the callback may read the next packet, close or replace the link,
        # or reconnect to a new session (with a new set of QoS 2 pids held)
        pid = c._rx_pid
        sock = c.sock
        held = c._qos2_in
    if length < 0:  # skipped, acknowledged, reported
        c.cbstat(pid, _SOVERSIZE)
    # QoS 2: a pid already delivered is not delivered again [MQTT-4.3.3-2]
    elif c.cb and (qos != 0x04 or pid not in held):
        start = c._rx_start  # (topic and pid checked by _receive)
        # The last topic received is reused while it repeats. _in_topic_key is its
        # two length bytes and the topic, and _in_topic_view sees as many bytes at
        # the start of this packet: equal, they say the same length and topic.
        if c._in_topic_view != c._in_topic_key:  # a new topic: a view made once
            view = c._in_view[: start - 2 if qos else start]
            key = bytes(view)
            topic = key[2:]
            # (kept once all three are made: a MemoryError leaves the last topic whole)
            c._in_topic_view = view
            c._in_topic_key = key
            c._in_topic = topic
        try:
            msg = bytes(c._in_view[start:length])
        except MemoryError:  # no room for the copy: skipped, reported
            c.cbstat(pid, _SOVERSIZE)
        else:
            c.msg_qos = qos >> 1
            c.cb(c._in_topic, msg, first & _RETAIN > 0, first & _DUP > 0)
    # QoS 2: delivered, not again in this session (held: the session's set from
    # before the callback), even if a callback reconnected to it
    if qos == 0x04 and pid not in held:
        held.add(pid)
        if held is c._qos2_in:
            c.on_qos2(pid, True)
    # the answer, unless a callback closed or replaced the link
    if qos and c.sock is sock:
        _send_pid(c, _PUBACK if qos == 0x02 else _PUBREC, pid)


# -- writing packets: a packet is built in c._out and written with one write() if it
# fits. These, and the other helpers of the frequent calls, are module functions: a
# method is searched for in the instance's attributes and then in each class (a
# subclass's instance misses twice), a module function is found at once.


def _begin(c, first_byte, length):
    # a new packet in _out: its fixed header, type and flags, then the Remaining
    # Length, 7 bits a byte, the top bit set while more follow [MQTT-2.2.3]
    if length > _MAX_REMAINING:
        raise MQTTException(_ESTRTOLONG)
    if c._link != _LINK_UP:
        raise MQTTException(_ECONNOT)
    c._stall_start = None
    out = c._out
    out[0] = first_byte
    i = 1
    while length > 0x7F:
        out[i] = length & 0x7F | 0x80
        length >>= 7
        i += 1
    out[i] = length
    c._out_len = i + 1


def _put_u16(c, n):
    # a two-byte integer, most significant byte first [MQTT-1.5.2]
    i = c._out_len
    if i + 2 > _OUT_SIZE:
        _flush(c)
        i = 0
    out = c._out
    out[i] = n >> 8
    out[i + 1] = n & 0xFF
    c._out_len = i + 2


def _put_bytes(c, data):
    i = c._out_len
    n = len(data)
    if i + n > _OUT_SIZE:  # full: out with it, and with data too if _out cannot hold it
        _flush(c)
        i = 0
        if n > _OUT_SIZE:
            c._write(data, n)
            return
    c._out[i : i + n] = data
    c._out_len = i + n


def _flush(c):
    n = c._out_len
    c._out_len = 0
    if c._trace_write:  # exactly the bytes of the packet, for a tracing subclass
        c._write(bytes(c._out[:n]), n)
    else:
        c._write(c._out, n)


def _track(c, pid):
    # flow pid awaits its answer until message_timeout from now
    c.rcv_pids[pid] = ticks_add(ticks_ms(), _ms(c.message_timeout))
    return pid


def _send_pid(c, first_byte, pid):
    # PUBACK, PUBREC, PUBREL, PUBCOMP: the type and the packet id
    _begin(c, first_byte, 2)
    _put_u16(c, pid)
    _flush(c)


def _publish_topic(c, topic, qos):
    # topic as valid bytes to publish to at qos: checked once and remembered while
    # the same object comes again (str or bytes only: a bytearray may change)
    if (topic is c._pub_source or topic is c._pub_topic) and (c._pub_utf8 or not qos):
        return c._pub_topic
    t = topic_name(topic, qos > 0)
    c._pub_source = topic if type(topic) is str or type(topic) is bytes else _NOTHING
    c._pub_topic = t
    c._pub_utf8 = qos > 0
    return t


def _send_publish(c, first, topic, msg, pid):
    # PUBLISH [MQTT-3.3]: first (its type and flags), then the topic, the pid if
    # QoS > 0 (pid, or a new one if 0, drawn once the packet can go; the flow tracked
    # from now on), the payload; topic and msg are bytes, checked by the caller.
    # Returns the pid (None for QoS 0).
    _begin(c, first, len(topic) + len(msg) + (4 if first & 0x06 else 2))
    _put_u16(c, len(topic))
    _put_bytes(c, topic)
    if first & 0x06:
        pid = _track(c, pid or c._new_pid())
        _put_u16(c, pid)
    else:
        pid = None
    _put_bytes(c, msg)
    _flush(c)
    return pid


def _send_filters(c, first_byte, filters, pid):
    # SUBSCRIBE or UNSUBSCRIBE [MQTT-3.8, MQTT-3.10] for filters (checked by
    # umqtt.subscriptions.topic_filters()): the packet id, then each filter, in a
    # SUBSCRIBE with its requested QoS byte. Returns the pid (pid, if not 0).
    subscribe = first_byte == _SUBSCRIBE
    n = 2
    for f, q in filters:
        n += 2 + len(f) + (1 if subscribe else 0)  # (the QoS byte)
    if pid and (type(pid) is not int or pid >> 16):
        raise MQTTException(_EARG)
    _begin(c, first_byte, n)
    pid = _track(c, pid or c._new_pid())
    _put_u16(c, pid)
    for f, q in filters:
        _put_u16(c, len(f))
        _put_bytes(c, f)
        if subscribe:
            _put_bytes(c, bytes((q,)))
    _flush(c)
    return pid

