"""README.rst renders without a warning, the files it names exist, and every command
its "Try it" and "Install" sections show is run as written by a test (COMMANDS says
which), or is the example form of one that is (EXAMPLE_FORMS says of which)."""
import os
import re

from conftest import REPO, TESTS, TIERS

# command as README shows it -> the test that runs it
COMMANDS = {
    "bash examples/demo.sh": "test_demo.py::test_demo_sh_as_written",
    "bash examples/run.sh all": "test_examples.py::test_run_sh_runs_every_example_as_readme_says",
    "bash examples/run.sh --cpython NAME": "test_examples.py::test_run_sh_runs_every_example_as_readme_says",
    "bash examples/run.sh NAME": "test_examples.py::test_run_sh_runs_every_example_as_readme_says",
    "bash tests/run.sh": "the CI run itself (.ci/run)",
    "bash tests/run.sh -k qos2": "the CI run itself (.ci/run passes -q the same way)",
    "bash tests/run.sh -m bytes": "test_readme.py::test_bytes_tier_runs_alone_in_seconds_as_written",
    "bash tests/setup.sh demo": "test_demo.py::test_setup_demo_installs_only_what_the_demo_needs",
    "bash tests/setup.sh": "tests/run.sh, at every run",
    "python3 -m http.server 8266": "test_install.py::test_readme_mip_route_as_written",
    "micropython -m mip install http://127.0.0.1:8266/package.json": "test_install.py::test_readme_mip_route_as_written",
    'mip.install("http://192.168.1.20:8266/package.json")': "test_install.py::test_readme_mip_route_as_written",
    'mip.install("http://192.168.1.20:8266/simple2.json")': "test_install.py::test_readme_mip_route_as_written",
    "mpremote mip install http://127.0.0.1:8266/package.json":
        "test_mpremote.py::test_mip_install_and_fs_cp_onto_a_board_then_run_an_example",
    "mpremote fs mkdir :lib/umqtt": "test_mpremote.py::test_mip_install_and_fs_cp_onto_a_board_then_run_an_example",
    "mpremote fs cp umqtt/simple2.py :lib/umqtt/simple2.py":
        "test_mpremote.py::test_mip_install_and_fs_cp_onto_a_board_then_run_an_example",
    "python3 sdist_upip.py": "test_install.py::test_upip_sdists_layout_and_minified_round_trip",
    "./compile.sh": "test_install.py::test_compiled_mpy_files_alone_pass_a_round_trip",
    'include("/path/to/this/repo/manifest.py")': "test_install.py::test_manifests_freeze_under_the_manifest_tools_rules",
    "pip install .": "test_install.py::test_pip_install_in_a_fresh_venv",
}
# forms with a placeholder the reader fills in
EXAMPLE_FORMS = {
    'mip.install("github:OWNER/REPO")': "the http form above, once published",
    'mip.install("github:OWNER/REPO/simple2.json")': "the http form above, once published",
    'upip.install("http://.../micropython-umqtt.robust2-VERSION.tar.gz")': "python3 sdist_upip.py's output",
}
COMMAND_START = re.compile(r"^(bash |python3 |python |micropython |mpremote |pip |\./compile\.sh|mip\.install\(|"
                           r"upip\.install\(|include\()")


def section(src, title):
    start = src.index("\n%s\n%s\n" % (title, "-" * len(title)))
    nxt = re.search(r"\n[^\n]+\n-{3,}\n", src[start + 1 + 2 * len(title) + 2:])
    return src[start: start + 1 + 2 * len(title) + 2 + (nxt.start() if nxt else len(src))]


def shown_commands(text):
    found = set()
    for block in re.findall(r"(?:::\n|code-block:: bash\n)\n((?:(?: {2,}[^\n]*)?\n)+)", text):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line.strip())
            if COMMAND_START.match(line):
                found.add(line)
    for lit in re.findall(r"``([^`]+)``", text.replace("\n", " ")):
        lit = re.sub(r"\s+", " ", lit.strip())
        if COMMAND_START.match(lit):
            found.add(lit)
    return found


def test_readme_is_valid_rst_and_its_paths_exist():
    import docutils.core

    src = open(os.path.join(REPO, "README.rst")).read()
    docutils.core.publish_string(src, writer="null",
                                 settings_overrides={"report_level": 1, "halt_level": 2})
    for cmd in ("bash examples/demo.sh", "bash tests/run.sh", "python3 bench/bench.py"):
        assert cmd in src, cmd
    for path in set(re.findall(r"\b((?:examples|tests|bench|umqtt)/[\w./]+\.(?:py|sh|png|rst))", src)):
        assert os.path.exists(os.path.join(REPO, path)), path


def test_every_command_shown_is_run_by_a_test():
    src = open(os.path.join(REPO, "README.rst")).read()
    shown = shown_commands(section(src, "Try it") + section(src, "Install"))
    assert "bash examples/demo.sh" in shown and "python3 sdist_upip.py" in shown  # the scan works
    unknown = shown - set(COMMANDS) - set(EXAMPLE_FORMS)
    assert not unknown, "README shows commands no test runs: %s" % sorted(unknown)
    for cmd, where in COMMANDS.items():
        assert cmd in re.sub(r"\s+", " ", src), cmd
        if "::" in where:
            f, name = where.split("::")
            assert "def %s(" % name in open(os.path.join(REPO, "tests", f)).read(), where


def test_every_test_file_has_exactly_one_tier(pytestconfig):
    files = sorted(f for f in os.listdir(TESTS) if re.match(r"test_.*\.py$", f))
    listed = [f for tier in TIERS for f in TIERS[tier]]
    assert len(listed) == len(set(listed)), "a file in two tiers: %s" % sorted(
        f for f in set(listed) if listed.count(f) > 1)
    assert not set(files) - set(listed), "test files without a tier (conftest.TIERS): %s" % sorted(
        set(files) - set(listed))
    assert not set(listed) - set(files), "conftest.TIERS names files that are gone: %s" % sorted(
        set(listed) - set(files))
    registered = [m.split(":")[0].strip() for m in pytestconfig.getini("markers")]
    for tier in TIERS:
        assert tier in registered, "tier %s is not registered in pytest.ini" % tier
    for f in files:  # the tier comes from TIERS alone: no file marks itself with another
        src = open(os.path.join(TESTS, f)).read()
        for tier in TIERS:
            assert "pytest.mark.%s" % tier not in src, (f, tier)
    readme = re.sub(r"\s+", " ", open(os.path.join(REPO, "README.rst")).read())
    para = readme[readme.index("Each test file belongs to one tier"):]
    for tier in TIERS:
        assert "``%s``" % tier in para[:900], "README does not list the tier " + tier


def test_bytes_tier_runs_alone_in_seconds_as_written():
    # README's inner loop: the bytes tier alone, every case of it, nothing else
    import subprocess
    import time

    from test_bytes import CASES

    t = time.time()
    p = subprocess.run(["bash", "tests/run.sh", "-m", "bytes"], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    took = time.time() - t
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    ran = set(re.findall(r"^(tests/test_\w+\.py) ", p.stdout, re.M))
    assert ran == {"tests/test_bytes.py"}, (ran, out)
    assert re.search(r"\b%d passed, \d+ deselected\b" % (2 * len(CASES)), p.stdout), out
    assert took < 90, "the inner loop took %.0f s" % took


def test_robust2_quick_start_runs_as_written(tmp_path, request):
    # README's robust2 quick start, the host name changed to this machine's; port 1883
    # as in README (a mosquitto of ours there, or the one already listening)
    import socket
    import subprocess

    from brokers import wait_port
    from conftest import INTERPRETERS, interpreter_cmd, script_env

    src = open(os.path.join(REPO, "README.rst")).read()
    quick = section(src, "Quick start")
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?: {4}[^\n]*)?\n)+)", quick)
    code = [b for b in blocks if "umqtt.robust2" in b][0]
    code = "\n".join(line[4:] for line in code.splitlines())
    assert code.count('"broker.local"') == 1
    code = code.replace('"broker.local"', '"127.0.0.1"')
    s = socket.socket()
    mine = None
    if s.connect_ex(("127.0.0.1", 1883)):
        conf = tmp_path / "m.conf"
        conf.write_text("listener 1883 127.0.0.1\nallow_anonymous true\n" + ("user root\n" if os.geteuid() == 0 else ""))
        mine = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
        wait_port(1883)
    s.close()
    try:
        f = tmp_path / "quick.py"
        f.write_text(code)
        for interp in INTERPRETERS:
            p = subprocess.run(interpreter_cmd(interp) + [str(f)], capture_output=True, text=True,
                               env=script_env(interp), timeout=60)
            assert p.returncode == 0, (interp, p.stdout + p.stderr)
            assert "readings not acknowledged yet:" in p.stdout, (interp, p.stdout)
            left = int(p.stdout.split("readings not acknowledged yet:")[1].split()[0])
            assert left <= 20, (interp, "the window is 20: the rest were acknowledged", left)
    finally:
        if mine:
            mine.terminate()
            mine.wait(10)
