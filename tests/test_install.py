"""Install paths, for real: mip from a local HTTP server into an empty folder, then a
round trip with what was installed; compile.sh's .mpy files imported by the unix port
from a folder holding nothing else."""
import functools
import sys
import http.server
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
    ("package.json", ["__init__.py", "errno.py", "robust2.py", "simple2.py", "store.py", "tls.py"]),
    ("simple2.json", ["__init__.py", "errno.py", "simple2.py", "tls.py"]),
])
def test_mip_install_then_round_trip(http_repo, tmp_path, request, pkg, files):
    lib = tmp_path / "lib"
    mip_install("%s/%s" % (http_repo, pkg), lib)
    assert sorted(os.listdir(lib / "umqtt")) == files
    for f in files:
        assert (lib / "umqtt" / f).read_bytes() == open(os.path.join(REPO, "umqtt", f), "rb").read()
    Runner("micropython", tmp_path, request)(ROUND_TRIP, path=str(lib), env={"INSTALLED": str(lib)})


def test_compiled_mpy_files_alone_pass_a_round_trip(tmp_path, request):
    out = tmp_path / "mpy"
    res = subprocess.run(["bash", os.path.join(REPO, "compile.sh"), "-o", str(out)],
                         capture_output=True, text=True, check=True)
    assert "simple2.mpy" in res.stdout
    assert sorted(os.listdir(out / "umqtt")) == ["__init__.mpy", "errno.mpy", "robust2.mpy", "simple2.mpy", "store.mpy", "tls.mpy"]
    # only the .mpy files are on the path: MICROPYPATH holds out/ and the test helpers
    Runner("micropython", tmp_path, request)(ROUND_TRIP + """
import umqtt.robust2
check(umqtt.robust2.__file__.endswith(".mpy"))
""", path=str(out), env={"INSTALLED": str(out)})


def test_upip_sdists_layout_and_minified_round_trip(tmp_path, request):
    import sys
    import tarfile
    import zlib

    sys.path.insert(0, REPO)
    import sdist_upip

    paths = sdist_upip.build(str(tmp_path / "dist"))
    version = sdist_upip.version()
    names = {os.path.basename(p) for p in paths}
    assert names == {"micropython-umqtt.simple2-%s.tar.gz" % version, "micropython-umqtt.robust2-%s.tar.gz" % version}
    unpacked = tmp_path / "lib"
    for p in paths:
        raw = open(p, "rb").read()
        zlib.decompressobj(16 + 12).decompress(raw)  # inflates with a 4 KB window, as upip does
        with tarfile.open(p) as tar:
            members = tar.getnames()
            base = os.path.basename(p)[: -len(".tar.gz")]
            assert all(m.startswith(base + "/") for m in members), members
            assert base + "/PKG-INFO" in members and not any(m.endswith("setup.py") for m in members)
            for m in tar.getmembers():
                if "/umqtt/" in m.name:
                    data = tar.extractfile(m).read()
                    assert b"#" not in data.replace(b'b"#"', b"").replace(b"'#'", b""), m.name + " not minified"
                    (unpacked / "umqtt").mkdir(parents=True, exist_ok=True)
                    (unpacked / "umqtt" / os.path.basename(m.name)).write_bytes(data)
        if "robust2" in p:
            req = [m for m in members if m.endswith("egg-info/requires.txt")]
            assert req, "robust2 must name simple2 for upip"
    # the minified modules, alone on the path, still work
    Runner("micropython", tmp_path, request)(ROUND_TRIP + """
from umqtt.robust2 import MQTTClient as R
r = client("inst-r", cls=R)
st = Status()
r.set_callback_status(st)
r.connect()
p = r.publish(name("inst"), b"robust", qos=2)
until(lambda: st.of(p) == [errno.SDELIVERED], [r])
""", path=str(unpacked), env={"INSTALLED": str(unpacked)})


def test_pip_install_in_a_fresh_venv(tmp_path, mosquitto):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", REPO],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    code = ("import umqtt.simple2, umqtt.robust2, sys\n"
            "assert umqtt.simple2.__file__.startswith(sys.prefix), umqtt.simple2.__file__\n"
            "c = umqtt.robust2.MQTTClient('pip', '127.0.0.1', %d)\n"
            "c.connect()\n"
            "assert c.publish('pip/t', b'x', qos=1)\n"
            "c.disconnect()\nprint('ok')\n" % mosquitto.port)
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stdout + out.stderr


def test_manifests_freeze_the_modules_with_one_version():
    # micropython's manifestfile runs a manifest with its folder as the cwd and these
    # functions in scope; no firmware can be built here, so this checks what they ask for
    import json

    calls = []

    def run(path):
        cwd = os.getcwd()
        os.chdir(os.path.dirname(path))
        try:
            exec(open(path).read(), {
                "metadata": lambda **kw: calls.append(("metadata", kw)),
                "package": lambda name, files=None, **kw: calls.append(("package", name, files)),
                "include": lambda p: run(os.path.join(os.getcwd(), p)),
                "require": lambda *a, **kw: calls.append(("require", a)),
                "module": lambda *a, **kw: calls.append(("module", a)),
            })
        finally:
            os.chdir(cwd)

    run(os.path.join(REPO, "manifest.py"))
    version = json.load(open(os.path.join(REPO, "package.json")))["version"]
    assert [c[1]["version"] for c in calls if c[0] == "metadata"] == [version, version]
    files = [f for c in calls if c[0] == "package" for f in c[2]]
    assert sorted(files) == ["__init__.py", "errno.py", "robust2.py", "simple2.py", "store.py", "tls.py"]
    for f in files:
        assert os.path.exists(os.path.join(REPO, "umqtt", f))
