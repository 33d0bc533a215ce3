# umqtt: MQTT 3.1.1 clients for MicroPython. MIT license; see LICENSE.
# What every module of the package shares lives here, below all of them, so that each
# can use it without importing another (no import circle; umqtt.errno, with its table of
# codes, costs heap): MQTTException and the checks of arguments.


class MQTTException(Exception):
    """An MQTT-level error; args[0] is one of the codes in umqtt.errno."""


_EARG = 51  # errno.EARG
_ESTRTOLONG = 4  # errno.ESTRTOLONG
_BYTES = (bytes, bytearray, memoryview)


def _encode(data, most=65535):
    # str -> UTF-8 bytes, at most `most` of them: lengths are counted in bytes [MQTT-1.5.3]
    if isinstance(data, str):
        data = bytes(data, "utf-8")
    elif not isinstance(data, _BYTES):
        raise MQTTException(_EARG)
    if len(data) > most:
        raise MQTTException(_ESTRTOLONG)
    return data


def _check_qos(qos):
    if type(qos) is not int or qos not in (0, 1, 2):
        raise MQTTException(_EARG)


def _utf8(data):
    # UTF-8 [MQTT-1.5.3-1], as far as the platform checks it: a broker drops the link for
    # a bad topic, and a client that keeps messages would send it again and again
    try:
        str(data, "utf-8")
    except UnicodeError:
        raise MQTTException(_EARG)
