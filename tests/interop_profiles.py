# What each broker of the interop tier does where brokers differ, as seen with this
# client (tests/README.rst has notes on each broker). Imported by the scenario
# scripts (interopcase.py, on MicroPython and CPython) and by test_interop.py. A value
# that differs from MQTT 3.1.1 is a named deviation: the scenario asserts that the
# broker still does it and that the client copes. If a broker changes, its scenario
# fails here first.
#
#   auth_code        MQTTException code for a wrong password or an unknown user (24:
#                    CONNACK 4, bad user name or password; 25: CONNACK 5, not
#                    authorized; the standard allows both)
#   anon_code        ... for a client with no user name at all
#   empty_id_clean0  a zero-length client id with clean_session=0: 22 (CONNACK 2, the
#                    standard [MQTT-3.1.3-8]) or 0 (accepted: deviation)
#   delivered_qos    "min": min(publish, subscription) (the standard); "sub": the
#                    subscription's QoS, QoS 0 arrives as QoS 2 (amqtt, deviation);
#                    "max1": min(publish, subscription, 1) (RabbitMQ has no QoS 2)
#   granted_qos2     what SUBACK grants for a QoS 2 subscription: 2, or 1 (RabbitMQ)
#   qos2_ack         the answer to our QoS 2 PUBLISH: "pubrec" (the standard) or "puback"
#                    (RabbitMQ, deviation: the flow ends there)
#   queues_qos0      a persistent session also queues QoS 0 messages while the client is
#                    away (the standard leaves it to the server)
#   queued_retain    messages queued for an offline session arrive with RETAIN=1 though
#                    they were not published retained (amqtt, deviation)
#   queued_qos1_dup  QoS 1 messages queued for an offline session arrive with DUP=1 on
#                    their first delivery (ejabberd, deviation)
#   redelivery       an unacknowledged QoS 1 message (and a QoS 2 flow past PUBREC) after
#                    a reconnect with the session kept: "dup1", re-sent with DUP=1 (the
#                    standard [MQTT-4.4.0-1]); "dup0", re-sent with DUP=0 (aedes,
#                    deviation); "none", never re-sent (amqtt, deviation)
#   session_linger_ms  a clean (or anonymous) session is dropped only up to this long
#                    after its DISCONNECT: a clean_session=0 connect before that finds it
#                    (session present = 1, with its subscriptions). 0: dropped at once,
#                    the standard [MQTT-3.1.2-6]. amqtt: 1200 (its session monitor runs
#                    once a second; deviation)
STANDARD = {
    "auth_code": 25,
    "anon_code": 25,
    "empty_id_clean0": 22,
    "delivered_qos": "min",
    "granted_qos2": 2,
    "qos2_ack": "pubrec",
    "queues_qos0": False,
    "queued_retain": False,
    "queued_qos1_dup": False,
    "redelivery": "dup1",
    "session_linger_ms": 0,
}


def _profile(**differences):
    p = dict(STANDARD)
    for k in differences:
        if k not in p:
            raise KeyError(k)
    p.update(differences)
    return p


PROFILES = {
    "mosquitto": _profile(),
    "amqtt": _profile(delivered_qos="sub", queues_qos0=True, queued_retain=True,
                      redelivery="none", session_linger_ms=1200),
    # auth_code 24 is what tests/aedes_server.mjs's authenticate() answers
    "aedes": _profile(auth_code=24, anon_code=24, empty_id_clean0=0, redelivery="dup0"),
    "rabbitmq": _profile(auth_code=24, anon_code=24, delivered_qos="max1", granted_qos2=1,
                         qos2_ack="puback", queues_qos0=True),
    "ejabberd": _profile(empty_id_clean0=0, queued_qos1_dup=True),
}
