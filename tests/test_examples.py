"""Every example runs to its end against mosquitto, on the MicroPython unix port and on
CPython, with ROUNDS set so that its main loop stops."""
import os
import subprocess

import pytest

from conftest import INTERPRETERS, REPO, interpreter_cmd, script_env

EXAMPLES = os.path.join(REPO, "examples")


def run_example(interp, name, mosquitto, tmp_path, port=None, rounds=40):
    env = script_env(interp, REPO, {"MQTT_HOST": "127.0.0.1", "MQTT_PORT": str(port or mosquitto.port),
                                    "ROUNDS": str(rounds), "TOPIC": "ex-%s-%s" % (interp, name)})
    env["MICROPYPATH" if interp == "micropython" else "PYTHONPATH"] += ":" + EXAMPLES
    p = subprocess.run(interpreter_cmd(interp) + [os.path.join(EXAMPLES, name + ".py")], cwd=str(tmp_path),
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.fixture(params=INTERPRETERS)
def interp(request):
    return request.param


def test_pub_and_sub(interp, mosquitto, tmp_path):
    assert "published" in run_example(interp, "example_pub", mosquitto, tmp_path)
    out = run_example(interp, "example_sub", mosquitto, tmp_path)
    assert "got b'ex-%s-example_sub/hello' b'to myself'" % interp in out


def test_sensor(interp, mosquitto, tmp_path):
    assert "readings sent: 40 of 40" in run_example(interp, "sensor", mosquitto, tmp_path)


def test_sensor_offline_drops_and_does_not_block(interp, tmp_path):
    from brokers import free_port

    class Nowhere:
        port = free_port()

    out = run_example(interp, "sensor", Nowhere, tmp_path)
    assert "readings sent: 0 of 40" in out


def test_button(interp, mosquitto, tmp_path):
    out = run_example(interp, "button", mosquitto, tmp_path, rounds=50)
    assert out.count("delivered after") == 3, out


def test_alarm_and_custom_policy(interp, mosquitto, tmp_path):
    out = run_example(interp, "alarm", mosquitto, tmp_path)
    assert "events kept from before: 0" in out and "still to deliver: 0" in out, out
    assert "policy example done, queued: 0" in run_example(interp, "custom_policy", mosquitto, tmp_path)


def test_deep_sleep_keeps_messages_across_wake_ups(interp, mosquitto, tmp_path):
    from brokers import free_port

    class Nowhere:
        port = free_port()

    out = run_example(interp, "deep_sleep", Nowhere, tmp_path)  # the broker is unreachable
    assert "kept from the last wake-up: 0" in out and "going to sleep with 1 unacknowledged" in out, out
    out = run_example(interp, "deep_sleep", Nowhere, tmp_path)
    assert "kept from the last wake-up: 1" in out and "going to sleep with 2 unacknowledged" in out, out
    out = run_example(interp, "deep_sleep", mosquitto, tmp_path)  # back: all three go
    assert "kept from the last wake-up: 2" in out and "going to sleep with 0 unacknowledged" in out, out


# README's command for the examples: its own mosquitto on 127.0.0.1, bounded rounds
EXPECT = {"example_pub": "published", "example_sub": "got b'example-example_sub/hello' b'to myself'",
          "sensor": "readings sent: 40 of 40", "button": "press 1 delivered after",
          "alarm": "still to deliver: 0", "custom_policy": "policy example done, queued: 0",
          "deep_sleep": "going to sleep with 0 unacknowledged"}


@pytest.mark.parametrize("cmd", ["bash examples/run.sh all", "bash examples/run.sh --cpython all"])
def test_run_sh_runs_every_example_as_readme_says(cmd):
    p = subprocess.run(cmd.split(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "run: 7 of 7 examples ran to their end" in p.stdout, p.stdout
    for name, line in EXPECT.items():
        assert "run: examples/%s.py on %s, mosquitto on 127.0.0.1:" % (name, "cpython" if "cpython" in cmd else "micropython") in p.stdout
        assert line in p.stdout, (name, p.stdout)


def test_run_sh_lists_and_refuses_unknown_names():
    p = subprocess.run(["bash", "examples/run.sh"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "examples: example_pub example_sub sensor" in p.stdout, p.stdout + p.stderr
    p = subprocess.run(["bash", "examples/run.sh", "nosuch"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "no example nosuch" in p.stderr


def test_every_example_is_run_and_settings_stay_on_loopback():
    import sys

    sys.path.insert(0, EXAMPLES)
    import run

    files = {f[:-3] for f in os.listdir(EXAMPLES) if f.endswith(".py")}
    assert set(run.EXAMPLES) == files - {"settings", "demo", "demo_client", "run", "localbroker"}
    assert set(EXPECT) == set(run.EXAMPLES)
    # with no environment (as on a board, or run by hand): loopback, and a loop that ends
    out = subprocess.run([sys.executable, "-c", "import settings; print(settings.SERVER, settings.ROUNDS)"],
                         cwd=EXAMPLES, env={"PATH": os.environ["PATH"]}, capture_output=True, text=True).stdout
    assert out.split() == ["127.0.0.1", "200"], out
