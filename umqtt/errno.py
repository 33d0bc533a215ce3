# umqtt.errno: numeric codes of umqtt.simple2 / umqtt.robust2 errors and statuses.
# MIT license; see LICENSE. README.rst has the table with every code's meaning.
# Exceptions carry a code as MQTTException.args[0]; the status callback f(pid, status)
# gets one of the S* values.
from . import MQTTException  # (defined in the package, which imports nothing)


# Codes kept with fizista's umqtt.simple2 2.2.0 names and values.
EUNKNOWN = -1  # unknown error (not raised any more)
ECONCLOSE = 1  # the broker closed the connection (EOF)
EREADLEN = 2  # wrong length of read data (not raised any more)
EWRITELEN = 3  # wrong length of written data (not raised any more)
ESTRTOLONG = 4  # a string is over 65535 bytes, or a packet over 268435455
ERESPONSE = 6  # wrong response (not raised any more)
EKEEPALIVE = 7  # no PINGRESP within the keep-alive period: the link is dead
ENOCON = 8  # no connection (kept for old code; 28 is raised)
ECONUNKNOWN = 20  # CONNACK refused with a code above 5: MQTTException(20, code)
ECONPROTOCOL = 21  # CONNACK 1: unacceptable protocol version
ECONREJECT = 22  # CONNACK 2: client identifier rejected
ECONUNAVAIBLE = 23  # CONNACK 3: server unavailable
ECONCREDENTIALS = 24  # CONNACK 4: bad user name or password
ECONAUTH = 25  # CONNACK 5: not authorized
ECONNOT = 28  # not connected: call connect() first
ECONLENGTH = 29  # the answer to CONNECT is not a CONNACK
ECONTIMEOUT = 30  # no CONNACK, or a write could not finish, within socket_timeout
ESUBACKUNKNOWN = 40  # (not raised any more: a bad SUBACK raises EPROTO)
ESUBACKFAIL = 44  # (not raised any more: a refused topic gives status SREFUSED)

# New codes.
EPROTO = 50  # the broker sent a malformed or unexpected packet; connection closed
EARG = 51  # an argument the library refuses (type, QoS, topic, TLS without a CA): nothing was sent
ETOOBIG = 52  # an incoming message whose topic alone is over max_size: connection closed
ENOACK = 53  # robust2: a message kept in flight got no answer in time: the link is reset

# Status codes for set_callback_status(f): f(pid, status)
STIMEOUT = 0  # no answer within message_timeout, or the session that held it was lost
SDELIVERED = 1  # PUBACK / PUBCOMP / SUBACK (granted) / UNSUBACK received
SUNKNOWNPID = 2  # an answer for a packet id that is not in flight (late or stale)
SREFUSED = 3  # SUBACK 0x80: the broker refused this topic filter (one call per filter)
SOVERSIZE = 4  # an incoming message too big to hold was skipped (acknowledged; pid 0 for QoS 0)
SDROPPED = 5  # robust2: a queued message was dropped by the queue's overflow policy
