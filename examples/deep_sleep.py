# A sensor that deep-sleeps between readings (ESP32, ESP8266): each wake-up is a fresh
# start of the program. The MQTT session lives on in the broker (clean_session=False)
# and, for the messages not yet acknowledged, in a file: what was in flight when the
# device went to sleep, or lost power, is sent again on the next wake-up. The file is a
# journal (umqtt.store): a publish appends its message plus 9 bytes, its state change
# and its acknowledgement 8 bytes each, so a wake-up that sends one reading writes a
# few dozen bytes of flash, not the whole queue; the file is rewritten whole only once
# it is over 4 KB and over 3 times what it keeps.
import time

from umqtt.robust2 import MQTTClient
from umqtt.simple2 import ticks_ms, ticks_diff
from umqtt.store import FileStore
from settings import SERVER, PORT, TOPIC

c = MQTTClient("example-sleeper", SERVER, PORT, keepalive=60, socket_timeout=3)
store = FileStore("sleeper.dat")  # "/sleeper.dat" on a board
c.store = store
print("kept from the last wake-up:", store.load(c))
c.connect(clean_session=False)
c.publish(TOPIC + "/reading", b"%d" % (ticks_ms() % 1000), qos=1)
t = ticks_ms()
while c.things_to_do() and ticks_diff(ticks_ms(), t) < 5000:  # at most 5 s awake
    if c.is_conn_issue():
        c.reconnect()
    c.check_msg()
    c.send_queue()  # what waited while offline, as far as the window allows
    time.sleep(0.01)
print("going to sleep with", c.things_to_do(), "unacknowledged")
c.disconnect()
store.close()  # every record is on flash already (each is flushed); this frees the file
try:
    import machine

    machine.deepsleep(60000)  # wakes up as a reset: the program starts again
except (ImportError, AttributeError):
    pass  # the unix port and CPython: just end
