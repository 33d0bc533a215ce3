# umqtt.resubscribe: robust2's subscriptions (remembered, queued while offline,
# renewed on a new session), imported by robust2 on first use: a device that only
# publishes never loads it. MIT license; see LICENSE.
# It does not import robust2 (no import circle): what it needs of robust2 comes through
# the client, c (c.is_connected(), c._draw_pid(), c._issue(), its attributes).
# The packets themselves are simple2's (_send_filters), the checks of filters and SUBACK
# in umqtt.subscriptions (loaded with this module: only a program with subscriptions
# loads either).
from . import MQTTException, _encode
from .simple2 import _send_filters
from .subscriptions import topic_filters

# (plain names, not const(): this module runs on CPython too)
_FAILURES = (OSError, MQTTException, ValueError)  # robust2's: what a failing link raises
_SUBSCRIBE = 0x82
_UNSUBSCRIBE = 0xA2
_IN_SUBSCRIBE = 3  # PLACES: subscribe


def subscribe(c, topic, qos, resubscribe):
    fs = topic_filters(topic, qos)
    if c.RESUBSCRIBE and resubscribe:
        for f in topic if isinstance(topic, list) else [topic]:  # remembered one
            f = f if isinstance(f, tuple) else (f, qos)  # filter at a time, as given
            _forget(c, topic_filters(f[0])[0][0])
            c.subs.append(f)
        if not c.is_connected():  # not queued: the next connection renews all
            c._renew = True
            return None
    return _subscribe_now(c, (_SUBSCRIBE, fs))


def unsubscribe(c, topic):
    fs = topic_filters(topic)
    for f in fs:
        _forget(c, f[0])
    return _subscribe_now(c, (_UNSUBSCRIBE, fs))


def _forget(c, f):
    # drop filter f (bytes) from the remembered subscriptions (str or bytes alike)
    c.subs = [s for s in c.subs if bytes(_encode(s[0])) != f]


def _send(c, s, pid, place):
    # s = (op, [(filter, qos)]) sent now with pid (0: a new one); its pid, or None (a
    # connection failure, kept in conn_issue)
    try:
        return _send_filters(c, s[0], s[1], pid)
    except _FAILURES as e:
        return c._issue(e, place)


def _subscribe_now(c, s):
    # SUBSCRIBE or UNSUBSCRIBE now, else once connected
    p = _send(c, s, c._draw_pid(), _IN_SUBSCRIBE) if c.is_connected() else None
    if p:
        c.sub_to_confirm[p] = s
    else:
        c.sub_to_send.append(s)
    return p


def send_queued(c):
    # the queued (UN)SUBSCRIBEs, in order; one that fails stays first
    q = c.sub_to_send
    while q and c.is_connected():
        p = _send(c, q[0], c._draw_pid(), _IN_SUBSCRIBE)
        if not p:
            return
        c.sub_to_confirm[p] = q.pop(0)


def _pending(c):
    # the unanswered (UN)SUBSCRIBEs, oldest first: pids are drawn in turn, and a dict
    # keeps no order on MicroPython
    last = c._lastpid
    return sorted(c.sub_to_confirm.items(), key=lambda i: -((last - i[0]) % 65535))


def renew(c):
    # on_connect(): the unanswered (UN)SUBSCRIBEs again with the pids subscribe()
    # returned, then the queued ones, then the remembered subscriptions if the session
    # is new (README: what happens on a reconnect)
    for pid, s in _pending(c):
        if c.sock:
            _send(c, s, pid, c._place)
    send_queued(c)
    if c.RESUBSCRIBE:
        c.resubscribe()


def resubscribe(c):
    # every remembered subscription in one SUBSCRIBE, less what the unanswered
    # (UN)SUBSCRIBEs, in order, leave subscribed: not asked for twice
    c._renew = False
    left = []
    for pid, s in _pending(c):
        for f, q in s[1]:
            left = [x for x in left if x[0] != f]
            if s[0] == _SUBSCRIBE:
                left.append((f, q))
    fs = [s for s in topic_filters(c.subs) if s not in left] if c.subs else []
    if fs:
        _subscribe_now(c, (_SUBSCRIBE, fs))
