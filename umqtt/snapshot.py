# umqtt.snapshot: robust2's side of a store (umqtt.store): what a snapshot holds, and
# putting one back. robust2 imports it for snapshot() and restore(): a device without a
# store never loads it. It reads robust2's attributes; umqtt.store sees
# only c.snapshot(), c.restore(...) and the arguments of its event methods.
# MIT license; see LICENSE.
from . import _encode
from .simple2 import pid_gen, topic_name

# (plain numbers, not const(): this module runs on CPython too) robust2's record fields
# and states
_QOS = 3
_STATE = 5
_QUEUED = 0
_DROPPED = 3
_MOST = 268435451  # topic + payload of a PUBLISH with a pid, at most (268435455 - 4)


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


def snapshot(c):
    # robust2's snapshot(): (the last pid drawn, the kept messages, the QoS 2 pids held)
    return c._lastpid, _Kept(c), sorted(c._qos2_in)


def restore(c, last_pid, messages, held):
    # robust2's restore(): what snapshot() gave, put back into client c. The new queue is
    # of the class of the one it replaces (robust2's MessageQueue: not imported, so this
    # module and robust2 make no import circle)
    c._lastpid = last_pid
    c.newpid = pid_gen(last_pid)
    c.inflight = []
    q = c.msg_to_send = type(c.msg_to_send)(c.msg_to_send.budget)
    for m in messages:
        # the topic and payload as bytes, checked now (a store may give str): they go
        # out as they are (the 7th field: the queue's link)
        t = topic_name(m[0])
        m = [t, bytes(_encode(m[1], _MOST - len(t))), m[2], m[3], m[4], m[5], None]
        if m[_STATE] == _QUEUED:
            q.append(m)
        else:
            c.inflight.append(m)
    # the queued messages' pids were drawn in an earlier run: each new pid is looked
    # for among them until the queue has been empty once (robust2's _new_pid() looks
    # once more than a round of 65535 pids has been drawn)
    q.pids_drawn = 65536
    c._qos2_in.update(held)
