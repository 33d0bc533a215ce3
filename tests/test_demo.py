"""README's demo command as written, and the demo's setup: it installs only mosquitto
and the MicroPython unix port, and says what it does."""
import os
import shutil
import stat
import subprocess

from conftest import REPO


def test_demo_sh_as_written():
    p = subprocess.run(["bash", "examples/demo.sh"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("demo: checking for mosquitto and the MicroPython unix port"), lines
    assert lines[1].startswith("setup: ready: MicroPython 1."), lines  # not sys.version (3.4.0)
    for want in ("demo: stopping the broker", "demo: starting the broker again", "client: reconnected",
                 "lost 0", "demo: nothing lost"):
        assert any(want in line for line in lines), (want, p.stdout)


def fake(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_setup_demo_installs_only_what_the_demo_needs(tmp_path):
    # tests/setup.sh in a copy of the repository whose .venv has no MicroPython yet,
    # with apt-get, npm and pip as stand-ins that log what they are asked (no network)
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    for f in ("tests/setup.sh", "tests/requirements.txt"):
        shutil.copy(os.path.join(REPO, f), repo / f)
    log = tmp_path / "log"
    bin_ = tmp_path / "bin"
    venv = repo / ".venv" / "bin"
    bin_.mkdir()
    venv.mkdir(parents=True)
    for tool in ("apt-get", "npm", "sudo", "invoke-rc.d"):
        fake(bin_ / tool, 'echo "%s $*" >> %s\n' % (tool, log))
    fake(venv / "python", "exit 0\n")
    fake(venv / "pip", 'echo "pip $*" >> %s\ntouch %s/installed\n' % (log, tmp_path))
    fake(venv / "micropython", '[ -f %s/installed ] || exit 1\nexec %s "$@"\n'
         % (tmp_path, os.path.join(REPO, ".venv", "bin", "micropython")))
    env = dict(os.environ, PATH="%s:%s" % (bin_, os.environ["PATH"]))
    p = subprocess.run(["bash", "tests/setup.sh", "demo"], cwd=str(repo), env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    calls = log.read_text().splitlines() if log.exists() else []
    pins = [line for line in open(os.path.join(REPO, "tests", "requirements.txt")) if line.startswith("jonnor")]
    assert calls == ["pip install -q --disable-pip-version-check " + pins[0].split()[0]], calls
    assert "setup: installing the MicroPython unix port" in p.stdout
    assert "setup: ready: MicroPython 1." in p.stdout, p.stdout
