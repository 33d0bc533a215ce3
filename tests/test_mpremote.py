"""Installing onto a "board" with mpremote: the MicroPython unix port on a pseudo-terminal
stands in for the board (mpremote talks to its raw REPL; `resume` keeps mpremote from
soft-resetting it, which would end the unix port). Then `mip install` and `fs cp` put
the library on it, and `run` executes a client script there against mosquitto."""
import os
import pty
import select
import subprocess
import threading
import tty

import pytest

from conftest import MICROPYTHON, REPO
from test_install import http_repo  # noqa: F401  (the fixture serving the repository)

MPREMOTE = os.path.join(os.path.dirname(MICROPYTHON), "mpremote")

DEVICE_SCRIPT = """
import sys
sys.path.insert(0, "%(lib)s")
from umqtt.simple2 import MQTTClient
got = []
c = MQTTClient("board-%(lib)s", "127.0.0.1", %(port)d)
c.set_callback(lambda t, m, r, d: got.append(m))
c.connect()
c.subscribe(b"board/%(lib)s", 1)
c.publish(b"board/%(lib)s", b"from the board", qos=1)
n = 0
while not got and n < 2000:
    c.check_msg()
    n += 1
    import time
    time.sleep_ms(1)
c.disconnect()
print("board got", got, "from", sys.modules["umqtt.simple2"].__file__)
"""


class FakeBoard:
    """The unix port's stdio on one pty; mpremote on another; a thread copies between."""

    def __init__(self, cwd):
        self.m_dev, s_dev = pty.openpty()
        self.m_host, self.s_host = pty.openpty()
        for fd in (s_dev, self.s_host):
            tty.setraw(fd)
        self.path = os.ttyname(self.s_host)
        self.proc = subprocess.Popen([MICROPYTHON, "-X", "heapsize=2M"], stdin=s_dev, stdout=s_dev, stderr=s_dev,
                                     cwd=cwd, env=dict(os.environ, HOME=cwd), start_new_session=True)
        os.close(s_dev)
        self.halt = False
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        while not self.halt:
            for fd in select.select([self.m_dev, self.m_host], [], [], 0.1)[0]:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    data = b""
                if data:
                    os.write(self.m_host if fd == self.m_dev else self.m_dev, data)
                elif fd == self.m_dev:
                    self.halt = True

    def mpremote(self, *args):
        p = subprocess.run([MPREMOTE, "connect", self.path, "resume", *args], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    def close(self):
        self.halt = True
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.thread.join(5)
        for fd in (self.m_dev, self.m_host, self.s_host):
            os.close(fd)


@pytest.fixture
def board(tmp_path):
    b = FakeBoard(str(tmp_path))
    yield b
    b.close()


def test_mip_install_and_fs_cp_onto_a_board_then_run(board, tmp_path, http_repo, mosquitto):  # noqa: F811
    assert "linux" in board.mpremote("exec", "import sys; print(sys.platform)")
    # mip through mpremote: the host fetches, the files land on the board
    out = board.mpremote("mip", "install", "--target", "lib1", http_repo + "/package.json")
    assert "Done" in out, out
    assert sorted(os.listdir(tmp_path / "lib1" / "umqtt")) == sorted(
        f for f in os.listdir(os.path.join(REPO, "umqtt")) if f.endswith(".py") and f != "_cpython.py")
    # plain copies with fs cp
    board.mpremote("fs", "mkdir", ":lib2", "+", "fs", "mkdir", ":lib2/umqtt")
    for f in ("__init__.py", "errno.py", "simple2.py"):
        board.mpremote("fs", "cp", os.path.join(REPO, "umqtt", f), ":lib2/umqtt/" + f)
    for lib in ("lib1", "lib2"):
        script = tmp_path / ("run_%s.py" % lib)
        script.write_text(DEVICE_SCRIPT % {"lib": lib, "port": mosquitto.port})
        out = board.mpremote("run", str(script))
        assert "board got [b'from the board'] from %s/umqtt/simple2.py" % lib in out, out
        board.mpremote("exec", "import sys; [sys.modules.pop(m) for m in list(sys.modules) if m.startswith('umqtt')]")
