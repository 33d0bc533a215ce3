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

# what `mpremote run` executes on the board: examples/example_sub.py, from the library
# in the given folder (settings.py, copied beside it, tells where the broker is)
DEVICE_SCRIPT = """
import sys
sys.path.insert(0, "%(lib)s")
exec(open("%(example)s").read())
print("ran from", sys.modules["umqtt.simple2"].__file__)
"""


class FakeBoard:
    """The unix port's stdio on one pty; mpremote on another; a thread copies between."""

    def __init__(self, cwd, env):
        self.m_dev, s_dev = pty.openpty()
        self.m_host, self.s_host = pty.openpty()
        for fd in (s_dev, self.s_host):
            tty.setraw(fd)
        self.path = os.ttyname(self.s_host)
        self.proc = subprocess.Popen([MICROPYTHON, "-X", "heapsize=2M"], stdin=s_dev, stdout=s_dev, stderr=s_dev,
                                     cwd=cwd, env=dict(os.environ, HOME=cwd, **env), start_new_session=True)
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
def board(tmp_path, mosquitto):
    b = FakeBoard(str(tmp_path), {"MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(mosquitto.port),
                                  "ROUNDS": "300", "TOPIC": "board"})
    yield b
    b.close()


def test_mip_install_and_fs_cp_onto_a_board_then_run_an_example(board, tmp_path, http_repo):  # noqa: F811
    assert "linux" in board.mpremote("exec", "import sys; print(sys.platform)")
    # mip through mpremote: the host fetches, the files land on the board
    out = board.mpremote("mip", "install", "--target", "lib1", http_repo + "/package.json")
    assert "Done" in out, out
    assert sorted(os.listdir(tmp_path / "lib1" / "umqtt")) == sorted(
        f for f in os.listdir(os.path.join(REPO, "umqtt")) if f.endswith(".py") and f != "_cpython.py")
    # plain copies with fs cp, and the example with its settings
    board.mpremote("fs", "mkdir", ":lib2", "+", "fs", "mkdir", ":lib2/umqtt")
    for f in ("__init__.py", "errno.py", "simple2.py", "subscriptions.py"):
        board.mpremote("fs", "cp", os.path.join(REPO, "umqtt", f), ":lib2/umqtt/" + f)
    for f in ("settings.py", "example_sub.py"):
        board.mpremote("fs", "cp", os.path.join(REPO, "examples", f), ":" + f)
    for lib in ("lib1", "lib2"):
        script = tmp_path / ("run_%s.py" % lib)
        script.write_text(DEVICE_SCRIPT % {"lib": lib, "example": "example_sub.py"})
        out = board.mpremote("run", str(script))
        assert "got b'board/hello' b'to myself'" in out, out
        assert "ran from %s/umqtt/simple2.py" % lib in out, out
        board.mpremote("exec", "import sys; [sys.modules.pop(m) for m in list(sys.modules) if m.startswith('umqtt')]")
