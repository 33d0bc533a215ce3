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
    ("package.json", ["__init__.py", "errno.py", "resubscribe.py", "robust2.py", "simple2.py", "snapshot.py",
                      "store.py", "subscriptions.py", "tls.py"]),
    ("simple2.json", ["__init__.py", "errno.py", "simple2.py", "subscriptions.py", "tls.py"]),
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
    assert sorted(os.listdir(out / "umqtt")) == ["__init__.mpy", "errno.mpy", "resubscribe.mpy", "robust2.mpy", "simple2.mpy", "snapshot.mpy",
                                                 "store.mpy", "subscriptions.mpy", "tls.mpy"]
    # only the .mpy files are on the path: MICROPYPATH holds out/ and the test helpers
    Runner("micropython", tmp_path, request)(ROUND_TRIP + """
import umqtt.robust2
check(umqtt.robust2.__file__.endswith(".mpy"))
""", path=str(out), env={"INSTALLED": str(out)})


def system_python3():
    """The machine's python3, not the venv's: README's commands are typed in a shell."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else shutil.which("python3")


def test_upip_sdists_layout_and_minified_round_trip(tmp_path, request):
    import tarfile
    import zlib

    sys.path.insert(0, REPO)
    import sdist_upip

    # README's command, with the system python3, in a copy of what it reads: it must
    # need nothing but the standard library (-S: no site-packages at all gives the same)
    src = tmp_path / "src"
    shutil.copytree(os.path.join(REPO, "umqtt"), src / "umqtt")
    for f in ("sdist_upip.py", "package.json"):
        shutil.copy(os.path.join(REPO, f), src / f)
    res = subprocess.run([system_python3(), "sdist_upip.py"], cwd=str(src), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    bare = subprocess.run([system_python3(), "-S", "sdist_upip.py", "-d", "bare"], cwd=str(src),
                          capture_output=True, text=True, timeout=60)
    assert bare.returncode == 0, bare.stdout + bare.stderr
    paths = sorted(str(p) for p in (src / "dist").iterdir())
    assert [open(p, "rb").read() for p in paths] == [open(str(src / "bare" / os.path.basename(p)), "rb").read()
                                                    for p in paths]
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
                    orig = open(os.path.join(REPO, "umqtt", os.path.basename(m.name)), "rb").read()
                    assert b'"""' not in data and (len(data) < 0.7 * len(orig) or not orig.strip()), m.name + " not minified"
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


def test_minify_keeps_the_code_and_refuses_a_change():
    sys.path.insert(0, REPO)
    import sdist_upip

    src = 'def f(a):\n    """doc"""\n\n    # note\n    s = """x\n\n  y"""  # keep the inside\n    return (a +\n            1)\n'
    out = sdist_upip.minify(src)
    assert out == 'def f(a):\n s = """x\n\n  y"""\n return (a +\n1)\n', out
    ns = {}
    exec(out, ns)
    assert ns["f"](1) == 2
    assert sdist_upip.minify('class A:\n    """only a docstring"""\n') == "class A:\n pass\n"


README_MIP = ("python3 -m http.server 8266",
              'mip.install("http://192.168.1.20:8266/package.json")',
              'mip.install("http://192.168.1.20:8266/simple2.json")',
              "micropython -m mip install http://127.0.0.1:8266/package.json")


def test_readme_mip_route_as_written(tmp_path, request):
    # the server command and the unix port's command exactly as README shows them; the
    # board's lines with the computer's address (192.168.1.20 there) as 127.0.0.1
    import time
    import urllib.request

    readme = open(os.path.join(REPO, "README.rst")).read()
    for cmd in README_MIP:
        assert cmd in readme, cmd
    srv = subprocess.Popen(README_MIP[0].replace("python3", system_python3(), 1).split(), cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen("http://127.0.0.1:8266/package.json", timeout=1).read()
                break
            except OSError:
                assert srv.poll() is None, "port 8266 taken? " + srv.stderr.read().decode()
                assert time.monotonic() < end, "http.server did not answer"
                time.sleep(0.05)
        home = tmp_path / "home"
        home.mkdir()
        argv = README_MIP[3].split()
        out = subprocess.run([MICROPYTHON] + argv[1:], capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, HOME=str(home))).stdout
        assert "Done" in out and "not found" not in out, out
        lib = home / ".micropython" / "lib"
        assert sorted(os.listdir(lib / "umqtt")) == ["__init__.py", "errno.py", "resubscribe.py", "robust2.py",
                                                    "simple2.py", "snapshot.py", "store.py", "subscriptions.py", "tls.py"]
        Runner("micropython", tmp_path, request)(ROUND_TRIP, path=str(lib), env={"INSTALLED": str(lib)})
        board = tmp_path / "board"
        board.mkdir()
        code = "import mip\n" + README_MIP[2].replace("192.168.1.20", "127.0.0.1")[:-1] + ', target="lib")\n'
        out = subprocess.run([MICROPYTHON, "-c", code], cwd=str(board), capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, HOME=str(board))).stdout
        assert "Done" in out, out
        assert sorted(os.listdir(board / "lib" / "umqtt")) == ["__init__.py", "errno.py", "simple2.py", "subscriptions.py",
                                                                  "tls.py"]
    finally:
        srv.terminate()
        srv.wait(10)


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


OLD_MANIFEST = """metadata(description="robust2", version="1", license="MIT")
include("simple2.manifest.py")
package("umqtt", files=["robust2.py", "store.py"], opt=3)
"""
OLD_SIMPLE2_MANIFEST = """metadata(description="simple2", version="1", license="MIT")
package("umqtt", files=["__init__.py", "errno.py", "simple2.py", "tls.py"], opt=3)
"""
ALL = ["umqtt/__init__.py", "umqtt/errno.py", "umqtt/simple2.py", "umqtt/subscriptions.py", "umqtt/tls.py",
       "umqtt/robust2.py", "umqtt/store.py", "umqtt/resubscribe.py", "umqtt/snapshot.py"]


@pytest.mark.parametrize("how", ["FROZEN_MANIFEST", "included", "included by a manifest with metadata",
                                 "both included"])
def test_manifests_freeze_under_the_manifest_tools_rules(tmp_path, how):
    # tests/manifest_rules.py: the rules of MicroPython's tools/manifestfile.py, which is
    # not published as a package. A firmware build runs FROZEN_MANIFEST as an include()
    import json

    from manifest_rules import Manifest, ManifestError

    version = json.load(open(os.path.join(REPO, "package.json")))["version"]
    full, s2 = os.path.join(REPO, "manifest.py"), os.path.join(REPO, "simple2.manifest.py")
    board = tmp_path / "board_manifest.py"
    if how == "FROZEN_MANIFEST":
        m = Manifest().execute(full)
        assert m.metadata().version == version and "outages" in m.metadata().description
        assert [f[1] for f in m.files] == ALL
        m = Manifest().execute(s2)
        assert m.metadata().version == version and [f[1] for f in m.files] == ALL[:5]
        return
    lines = {"included": 'include(%r)\n' % full,
             "included by a manifest with metadata": 'metadata(description="my board", version="7")\ninclude(%r)\n' % full,
             "both included": 'include(%r)\ninclude(%r)\n' % (s2, full)}[how]
    board.write_text(lines)
    m = Manifest().execute(str(board))
    assert sorted(f[1] for f in m.files) == sorted(ALL), m.files
    assert all(f[2] == 3 for f in m.files)
    assert m.metadata().version == ("7" if "metadata" in how else version)
    # the rules do refuse what the real tool refused: the manifests of before the fix
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "manifest.py").write_text(OLD_MANIFEST)
    (tmp_path / "old" / "simple2.manifest.py").write_text(OLD_SIMPLE2_MANIFEST)
    with pytest.raises(ManifestError, match="simple2.manifest.py: Duplicate call to metadata"):
        Manifest().execute(str(tmp_path / "old" / "manifest.py"))
