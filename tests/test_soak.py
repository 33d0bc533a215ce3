"""A short soak in CI (bench/soak.py: seeded random faults, an independent subscriber);
the long run is by hand, see README.rst."""
import os
import subprocess
import sys

from conftest import REPO


def test_short_soak_loses_nothing():
    p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "soak.py"), "--qos1", "1500",
                        "--qos2", "500", "--rate", "200", "--seed", "5", "--gap", "1.2"],
                       capture_output=True, text=True, timeout=300)
    print(p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "RESULT: ok" in p.stdout
    faults = p.stdout.split("faults (seed 5): ")[1].split(" ")[0]
    assert int(faults) >= 3, "the run saw too few faults to prove anything: " + p.stdout
