"""bench/bench.py in its quick mode (1 run, small counts, ours plus whichever peers are
already in bench/peers/: no network): it runs, and its outputs hold every figure."""
import importlib.util
import json
import os
import subprocess
import sys

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "bench"))
import bench  # noqa: E402


def test_quick_bench_writes_every_figure(tmp_path):
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "bench.py"), "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    md = (out / "results.md").read_text()
    doc = json.loads((out / "results.json").read_text())
    ours = [k for k, c in bench.CLIENTS.items() if c[3]]
    assert set(ours) <= set(doc["clients"])
    for fig, (label, unit, _) in bench.FIGURES.items():
        assert "| %s |" % label in md, label
        for k in ours:
            r = doc["results"][fig][k]
            assert r["state"] == "ok" and r["median"] is not None, (fig, k, r)
    for fig, t in bench.TARGETS.items():
        for k in ours:  # judged, unless relative to a peer not measured
            peer_missing = t[0] == "x" and t[1] not in doc["clients"]
            assert doc["targets"][fig][k]["met"] in ((None,) if peer_missing else (True, False)), (fig, k)
    # the peers that were measured: each has every figure, or says why not
    for k in doc["clients"]:
        for fig in bench.FIGURES:
            r = doc["results"][fig][k]
            assert r["median"] is not None or r["state"] in ("n/a", "crash", "hang", "lost"), (fig, k, r)
    # messages counted by the independent subscriber
    for fig in ("qos0_rate", "qos1_rate", "pipe_rate", "burst_rate"):
        for k in ours:
            for run in doc["results"][fig][k]["runs"]:
                assert run["sent"] > 0 and run["counted"] == run["sent"], (fig, k, run)
    if importlib.util.find_spec("matplotlib"):
        assert (out / "chart.png").stat().st_size > 10000
