"""Install paths, for real: mip from a local HTTP server into an empty folder, then a
round trip with what was installed; compile.sh's .mpy files imported by the unix port
from a folder holding nothing else."""
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading

import pytest

from conftest import MICROPYTHON, REPO, Runner

ROUND_TRIP = """
import umqtt.simple2
check(umqtt.simple2.__file__.startswith(env("INSTALLED")), umqtt.simple2.__file__)
c = client("inst")
inbox = Inbox()
c.set_callback(inbox)
c.connect()
c.subscribe(name("inst"), 1)
c.publish(name("inst"), b"installed", qos=1)
until(lambda: inbox.msgs, [c])
eq(inbox.msgs[0][1], b"installed")
c.disconnect()
"""


@pytest.fixture(scope="module")
def http_repo():
    """The repository served over HTTP on 127.0.0.1, as mip would see it on GitHub."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=REPO)
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()


def mip_install(url, target):
    out = subprocess.run([MICROPYTHON, "-m", "mip", "install", "-t", str(target), url],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, HOME=str(target))).stdout
    # mip's exit code is 0 even when it failed: its output and the files tell
    assert "Done" in out and "not found" not in out, out
    return out


@pytest.mark.parametrize("pkg, files", [
    ("package.json", ["__init__.py", "errno.py", "robust2.py", "simple2.py"]),
    ("simple2.json", ["__init__.py", "errno.py", "simple2.py"]),
])
def test_mip_install_then_round_trip(http_repo, tmp_path, request, pkg, files):
    lib = tmp_path / "lib"
    mip_install("%s/%s" % (http_repo, pkg), lib)
    assert sorted(os.listdir(lib / "umqtt")) == files
    for f in files:
        assert (lib / "umqtt" / f).read_bytes() == open(os.path.join(REPO, "umqtt", f), "rb").read()
    assert json.load(open(os.path.join(REPO, pkg)))["version"] == json.load(
        open(os.path.join(REPO, "package.json")))["version"]
    Runner("micropython", tmp_path, request)(ROUND_TRIP, path=str(lib), env={"INSTALLED": str(lib)})


def test_compiled_mpy_files_alone_pass_a_round_trip(tmp_path, request):
    out = tmp_path / "mpy"
    res = subprocess.run(["bash", os.path.join(REPO, "compile.sh"), "-o", str(out)],
                         capture_output=True, text=True, check=True)
    assert "simple2.mpy" in res.stdout
    assert sorted(os.listdir(out / "umqtt")) == ["__init__.mpy", "errno.mpy", "robust2.mpy", "simple2.mpy"]
    # only the .mpy files are on the path: MICROPYPATH holds out/ and the test helpers
    Runner("micropython", tmp_path, request)(ROUND_TRIP + """
import umqtt.robust2
check(umqtt.robust2.__file__.endswith(".mpy"))
""", path=str(out), env={"INSTALLED": str(out)})
