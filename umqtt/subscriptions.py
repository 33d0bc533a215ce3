# umqtt.subscriptions: the checks of topic filters for SUBSCRIBE and UNSUBSCRIBE, and
# SUBACK, for umqtt.simple2 (and the subscriptions robust2 renews; simple2 writes the
# packets). MIT license; see LICENSE. Loaded by the first subscribe() or unsubscribe():
# a device that only publishes never holds this code.
from . import MQTTException, _encode, _check_qos, _utf8

_EARG = 51
_EPROTO = 50
_SUBACK_FAILURE = 0x80  # [MQTT-3.9.3]
_SDELIVERED = 1
_SUNKNOWNPID = 2
_SREFUSED = 3


def topic_filters(topic, qos=0):
    """[(filter bytes, qos)] of a filter or a list of filters (each may be a (filter,
    qos) tuple), if each is valid: '#' only as the whole last level, '+' only as a whole
    level [MQTT-4.7.1]; else MQTTException(EARG)."""
    filters = []
    for f in topic if isinstance(topic, list) else [topic]:
        q = qos
        if isinstance(f, tuple):
            f, q = f
        _check_qos(q)
        f = bytes(_encode(f))
        _utf8(f)
        if not f or 0 in f or 35 in f[:-1]:  # '#' before the end
            raise MQTTException(_EARG)
        for level in f.split(b"/"):
            if len(level) > 1 and (35 in level or 43 in level):  # '#', '+'
                raise MQTTException(_EARG)
        filters.append((f, q))
    if not filters:
        raise MQTTException(_EARG)
    return filters



def suback(c, pid, length):
    """SUBACK for pid, its body (length bytes) in c's input buffer: a return code per
    filter, each a granted QoS or a failure [MQTT-3.9.3]; all checked, and kept from
    callbacks that read, before any is reported."""
    codes = bytes(c._in_view[2:length])
    for code in codes:
        if code > 2 and code != _SUBACK_FAILURE:
            c._fail(_EPROTO)
    c.granted = codes
    if c.rcv_pids.pop(pid, None) is None:
        c.on_ack(pid, _SUNKNOWNPID)
    else:
        for code in codes:
            c.on_ack(pid, _SREFUSED if code == _SUBACK_FAILURE else _SDELIVERED)
