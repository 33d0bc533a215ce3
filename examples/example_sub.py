# umqtt.simple2: subscribe, and handle messages while doing other work.
import time

from umqtt.simple2 import MQTTClient
from settings import SERVER, PORT, ROUNDS, TOPIC


def on_message(topic, msg, retained, dup):
    print("got", topic, msg, "retained" if retained else "")


c = MQTTClient("example-sub", SERVER, PORT, keepalive=30)
c.set_callback(on_message)
c.connect()
c.subscribe(TOPIC + "/#", 1)
c.publish(TOPIC + "/hello", b"to myself", qos=1)
n = 0
while not ROUNDS or n < ROUNDS:
    c.check_msg()  # never blocks; sends the keep-alive pings too
    time.sleep(0.01)  # ... the application's own work goes here ...
    n += 1
c.disconnect()
