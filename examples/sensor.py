# robustness case 1: a temperature sensor. A reading that cannot be sent now is
# worthless a minute later: QoS 0, nothing queued, and no fast retries that would drain
# the battery. umqtt.robust2 backs off by itself; this loop never blocks on the network.
import time

from umqtt.robust2 import MQTTClient
from settings import SERVER, PORT, ROUNDS, TOPIC


class Sensor(MQTTClient):
    KEEP_QOS0 = False  # drop a reading we cannot send: the next one replaces it
    DELAY_MAX = 300000  # after repeated failures, try every 5 minutes at most


def read_temperature(n):
    return 20 + n % 5  # stands for the real sensor


c = Sensor("example-sensor", SERVER, PORT, keepalive=60)
c.connect()
sent = 0
n = 0
while not ROUNDS or n < ROUNDS:
    if c.is_conn_issue():
        c.reconnect()  # returns at once when the next attempt is not due yet
    if not c.is_conn_issue():
        c.publish(TOPIC + "/temperature", b"%d" % read_temperature(n))
        sent += 1
    c.check_msg()
    c.send_queue()  # what waited while offline, as far as the window allows
    time.sleep(0.05)  # one reading a minute on a real device
    n += 1
print("readings sent:", sent, "of", n)
c.disconnect()
