# A subclass with its own reconnect and queue policies: the two override points of
# umqtt.robust2, delay() and add_msg_to_send().
import time

from umqtt.robust2 import MQTTClient
from settings import SERVER, PORT, ROUNDS, TOPIC


class MyClient(MQTTClient):
    SCHEDULE = (1000, 5000, 30000, 300000)  # ms after the 1st, 2nd, 3rd... failure

    def delay(self, fails):
        # a fixed schedule instead of exponential backoff with jitter
        return self.SCHEDULE[min(fails, len(self.SCHEDULE)) - 1]

    def add_msg_to_send(self, data):
        # keep only the newest QoS 0 message of each topic; keep every QoS >= 1 message
        topic, msg, retain, qos = data[:4]
        if not qos:
            for m in self.msg_to_send:
                if m[0] == topic and not m[3]:
                    self.msg_to_send.remove(m)
                    break
        self.msg_to_send.append(data)


c = MyClient("example-policy", SERVER, PORT, keepalive=30)
c.connect()
n = 0
while not ROUNDS or n < ROUNDS:
    c.publish(TOPIC + "/state", b"%d" % n)
    if c.is_conn_issue():
        c.reconnect()
    c.check_msg()
    c.send_queue()  # what waited while offline, as far as the window allows
    time.sleep(0.02)
    n += 1
print("policy example done, queued:", len(c.msg_to_send))
c.disconnect()
