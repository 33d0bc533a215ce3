"""The README's demo: start a private mosquitto (persistence on, 127.0.0.1, a free
port), run examples/demo_client.py on the MicroPython unix port, stop the broker
for two seconds in the middle, and show what the client queued, re-sent and got back.
Run it through examples/demo.sh, which installs what it needs first. Python standard
library only (the broker comes from examples/localbroker.py)."""
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from localbroker import Broker  # noqa: E402


def main():
    with tempfile.TemporaryDirectory() as d:
        broker = Broker(os.path.join(d, "broker"), persistence=True).start()
        print("demo: mosquitto on 127.0.0.1:%d, persistence on" % broker.port, flush=True)
        micropython = os.path.join(REPO, ".venv", "bin", "micropython")
        env = dict(os.environ, MICROPYPATH="%s:.frozen" % REPO, DEMO_PORT=str(broker.port))
        client = subprocess.Popen([micropython, os.path.join(HERE, "demo_client.py")], env=env)

        def outage():
            time.sleep(1.5)
            print("demo: stopping the broker", flush=True)
            broker.stop()
            time.sleep(2)
            print("demo: starting the broker again", flush=True)
            broker.start()

        threading.Thread(target=outage, daemon=True).start()
        try:
            rc = client.wait(90)
        except subprocess.TimeoutExpired:
            client.kill()
            rc = 1
        broker.stop()
        print("demo: %s" % ("nothing lost" if rc == 0 else "FAILED"))
        return rc


if __name__ == "__main__":
    sys.exit(main())
