# Where the examples connect. On a board: edit these, and bring the network up in
# boot.py first. On the unix port and CPython, tests/test_examples.py sets them
# through the environment.
try:
    from os import getenv
except ImportError:  # most boards have no environment

    def getenv(name):
        return None


SERVER = getenv("MQTT_HOST") or "192.168.1.10"
PORT = int(getenv("MQTT_PORT") or 1883)
ROUNDS = int(getenv("ROUNDS") or 0)  # main-loop rounds before an example stops; 0: never
TOPIC = getenv("TOPIC") or "umqtt-example"
