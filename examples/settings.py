# Where the examples connect. `bash examples/run.sh NAME` sets these through the
# environment (a private mosquitto on 127.0.0.1). On a board, which has no environment:
# put your broker's address in SERVER, set ROUNDS = 0 to run for ever, and bring the
# network up in boot.py first.
try:
    from os import getenv
except ImportError:  # most boards have no environment

    def getenv(name):
        return None


SERVER = getenv("MQTT_HOST") or "127.0.0.1"
PORT = int(getenv("MQTT_PORT") or 1883)
ROUNDS = int(getenv("ROUNDS") or 200)  # main-loop rounds before an example stops; 0: never
TOPIC = getenv("TOPIC") or "umqtt-example"
