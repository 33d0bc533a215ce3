"""Byte-level tests of umqtt.simple2 through a scripted fake socket (no broker): every
case of bytecases.py runs in-process on CPython, and under the MicroPython unix port."""
import os
import subprocess
import sys

import pytest

from conftest import REPO, TESTS, interpreter_cmd, script_env

if REPO not in sys.path:
    sys.path.insert(0, REPO)

import bytecases  # noqa: E402

CASES = bytecases.all_cases()


@pytest.mark.parametrize("name", CASES)
def test_cpython(name):
    bytecases.run(name)


@pytest.mark.parametrize("name", CASES)
def test_micropython(name):
    cmd = interpreter_cmd("micropython")
    if name in bytecases.HEAPSIZE:
        cmd += ["-X", "heapsize=" + bytecases.HEAPSIZE[name]]
    try:
        p = subprocess.run(cmd + [os.path.join(TESTS, "bytecases.py")], cwd=TESTS,
                           env=script_env("micropython", extra={"CASE": name}),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=300)
    except subprocess.TimeoutExpired as e:
        pytest.fail("MicroPython hung in %s:\n%s" % (name, e.output))
    if p.returncode != 0 or "ok " + name not in p.stdout.splitlines():
        pytest.fail("MicroPython (exit %s):\n%s" % (p.returncode, p.stdout))
