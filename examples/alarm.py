# robustness case 3: an alarm sensor (a window broken). Every event must arrive, however
# long the outage, without short dumb retries that empty the battery: QoS 2 (exactly
# once), a larger queue, retries that back off to once every 10 minutes, and the events
# kept on flash so that even a power cut loses none of them.
import time

from umqtt.robust2 import MQTTClient
from umqtt.store import FileStore
from settings import SERVER, PORT, ROUNDS, TOPIC


class Alarm(MQTTClient):
    MSG_QUEUE_MAX = 50  # events are rare and small: keep many
    DELAY_MIN = 2000
    DELAY_MAX = 600000  # 10 minutes


c = Alarm("example-alarm", SERVER, PORT, keepalive=120)
c.store = FileStore("alarm.dat")  # "/alarm.dat" on a board
print("events kept from before:", c.store.load(c))
c.connect(clean_session=False)
n = 0
while not ROUNDS or n < ROUNDS:
    if n == 3:  # stands for the window contact opening
        c.publish(TOPIC + "/alarm", b"window broken", qos=2)
    if c.is_conn_issue():
        c.reconnect()
    c.check_msg()
    c.send_queue()  # what waited while offline, as far as the window allows
    if not c.things_to_do():
        pass  # everything delivered: a real device could sleep here
    time.sleep(0.05)
    n += 1
print("still to deliver:", c.things_to_do())
c.disconnect()
