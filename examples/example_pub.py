# umqtt.simple2: publish one message and leave.
from umqtt.simple2 import MQTTClient
from settings import SERVER, PORT, TOPIC

c = MQTTClient("example-pub", SERVER, PORT)
c.connect()
c.publish(TOPIC + "/hello", b"hello")
c.disconnect()
print("published")
