# umqtt.store: robust2's unsent and in-flight messages, and its packet-id counter, kept
# in a file on flash, so that a device that deep-sleeps or loses power resumes its MQTT
# session without losing a QoS >= 1 message. MIT license; see LICENSE.
#
#   from umqtt.store import FileStore
#   c = MQTTClient(...)
#   c.store = FileStore("/mqtt.dat")   # robust2 saves to it whenever its state changes
#   c.store.load(c)                    # what was saved before the sleep or power cut
#
# The file is rewritten whole at each change (a few hundred bytes for a few messages):
# keep the queues small where flash wear matters. A store is any object with save(c)
# and load(c): one that writes to RTC memory, or to an SD card, fits the same way.
import os

from umqtt.simple2 import pid_gen

_MAGIC = b"UMQ1"


class FileStore:
    def __init__(self, path):
        self.path = path

    def save(self, c):
        # Write-then-rename: a power cut while writing leaves the previous file whole.
        # The file ends with its own length, so a torn one is never taken for complete.
        tmp = self.path + ".tmp"
        try:  # only a .tmp: a cut came between remove and rename (FAT): it is the copy
            os.stat(self.path)
        except OSError:
            try:
                os.rename(tmp, self.path)
            except OSError:
                pass
        with open(tmp, "wb") as f:
            n = f.write(_MAGIC + _int(c._lastpid, 2))
            for m in c.inflight:
                n += _record(f, m, 1 | m[5] << 1)
            for m in c.msg_to_send:
                n += _record(f, m, 0)
            for p in c._q2:  # QoS 2 messages received, awaiting PUBREL: delivered once
                n += f.write(b"\x80" + _int(p, 2))
            f.write(_int(n, 4))
        try:
            os.rename(tmp, self.path)
        except OSError:  # FAT does not rename over a file: the .tmp is complete by now
            os.remove(self.path)
            os.rename(tmp, self.path)

    def load(self, c):
        # Puts the saved messages back into c; returns how many. Nothing saved: 0.
        for path in (self.path, self.path + ".tmp"):
            try:
                with open(path, "rb") as f:
                    r = _parse(f.read())
            except (OSError, ValueError):  # none, or torn
                continue
            c._lastpid, c.inflight, c.msg_to_send, q2 = r
            c.newpid = pid_gen(c._lastpid)
            c._q2.update(q2)
            return len(c.inflight) + len(c.msg_to_send)
        return 0


def _int(v, n):
    return v.to_bytes(n, "big")


def _get(d, i, n):
    return int.from_bytes(d[i : i + n], "big")


def _record(f, m, flags):
    # writes message m; flags: bit 0 in flight, bit 1 past PUBREC; bit 2 retain; bits
    # 3-4 QoS. The payload is written as it is: no copy of it is made
    topic, msg = m[0], m[1]
    n = f.write(bytes((flags | (4 if m[2] else 0) | m[3] << 3,)) + _int(m[4] or 0, 2) + _int(len(topic), 2))
    n += f.write(topic)
    n += f.write(_int(len(msg), 4))
    return n + f.write(msg)


def _parse(d):
    # (last pid, in flight, queued, QoS 2 pids held) of a whole file; ValueError for a
    # torn one: its records must end exactly where its length says, at the trailer
    e = len(d) - 4
    if d[:4] != _MAGIC or e < 6 or _get(d, e, 4) != e:
        raise ValueError
    inflight, queue, q2 = [], [], []
    i = 6
    while i < e:
        k = d[i]
        if k & 0x80:
            q2.append(_get(d, i + 1, 2))
            i += 3
            continue
        pid = _get(d, i + 1, 2)
        n = _get(d, i + 3, 2)
        topic = d[i + 5 : i + 5 + n]
        i += 5 + n
        n = _get(d, i, 4)
        m = (topic, d[i + 4 : i + 4 + n], bool(k & 4), k >> 3 & 3, pid or None)
        i += 4 + n
        if k & 1:
            inflight.append(list(m) + [k >> 1 & 1])
        else:
            queue.append(m)
    if i != e:
        raise ValueError
    return _get(d, 4, 2), inflight, queue, q2
