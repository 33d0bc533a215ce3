# umqtt: MQTT 3.1.1 clients for MicroPython. MIT license; see LICENSE.
# MQTTException lives here, below every module of the package, so that each can raise
# it without importing another (umqtt.errno, with its table of codes, costs heap).


class MQTTException(Exception):
    """An MQTT-level error; args[0] is one of the codes in umqtt.errno."""
