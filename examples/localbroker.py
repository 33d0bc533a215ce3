"""A private mosquitto for the examples and the demo (examples/run.py, examples/demo.py):
listening on 127.0.0.1 only, on a free port, with its own configuration, persistence
and log in a folder of its own. Python standard library only. The tests use the richer
tests/brokers.py."""
import os
import shutil
import socket
import subprocess
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def find_mosquitto():
    # Debian puts it in /usr/sbin, which is not on every user's PATH
    exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not exe:
        raise SystemExit("mosquitto is not installed: run  bash tests/setup.sh demo  "
                         "(or apt-get install mosquitto)")
    return exe


class Broker:
    """mosquitto on 127.0.0.1:port. stop() and start() again keep the port and, with
    persistence, the sessions and queued messages."""

    def __init__(self, d, persistence=True):
        self.dir = d
        self.port = free_port()
        self.exe = find_mosquitto()
        self.proc = None
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        self.conf = os.path.join(d, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\n" % self.port)
            f.write("log_dest file %s\n" % os.path.join(d, "mosquitto.log"))
            if persistence:
                f.write("persistence true\npersistence_location %s/\nautosave_interval 1\n"
                        % os.path.join(d, "data"))
            if os.geteuid() == 0:
                f.write("user root\n")  # else it drops to the mosquitto user, who cannot write here

    def start(self, timeout=10.0):
        self.proc = subprocess.Popen([self.exe, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        end = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
                    self.stop()
                    raise SystemExit("mosquitto did not start on 127.0.0.1:%d %s" % (self.port, err))
                time.sleep(0.02)

    def stop(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc.stderr.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
