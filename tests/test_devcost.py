"""bench/devcost.py: its quick mode (ours only, N=100, one name order, on whatever
MicroPython is here: DEVCOST_MP, else .venv/bin/micropython) produces every figure, and
the figures are sane; and README.rst's device-cost block is the one bench/devcost.json
(committed with it) makes."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "bench"))
import devcost  # noqa: E402


def test_readme_block_matches_committed_json():
    with open(devcost.JSON_PATH) as f:
        doc = json.load(f)
    with open(devcost.README) as f:
        text = f.read()
    block = devcost.readme_block(doc)
    assert block in text, "README.rst's devcost block is not what bench/devcost.json makes: run devcost.py --write"
    assert text.count(devcost.BEGIN) == 1 and text.count(devcost.END) == 1
    # the committed run measured ours and umqtt.simple 1.3.4, every figure
    for fig in devcost.FIGURES:
        for k in ("ours-simple2", "ours-robust2", devcost.BASE):
            assert doc["results"][fig][k]["median"] is not None, (fig, k)


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind missing (tests/setup.sh installs it)")
def test_quick_devcost_measures_every_figure(tmp_path):
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "devcost.py"), "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads((out / "devcost.json").read_text())
    md = (out / "devcost.md").read_text()
    res = doc["results"]
    assert set(doc["clients"]) == {"ours-simple2", "ours-robust2"}
    for fig, (label, _) in devcost.FIGURES.items():
        assert "| %s |" % label in md, label
        for k in doc["clients"]:
            r = res[fig][k]
            assert r.get("error") is None and r["median"] is not None, (fig, k, r)
    assert doc["meta"]["fake_write_instructions"] > 0
    for k in doc["clients"]:
        for op in devcost.OPS:
            ir = res["ir_" + op][k]
            assert ir["median"] > 0, (op, k)
            for run in ir["runs"]:
                # N and 2N runs: the second costs more by the operations' share, and the
                # empty loop's own difference is small against it (on CI's fallback, a
                # 64-bit build inside a CPython process, that one's sign is noise)
                d, dl = run["2n"] - run["n"], run["loop_2n"] - run["loop_n"]
                assert run["n"] > 0 and abs(dl) < d, (op, k, run)
                # start-up is the same in both: the N run holds it plus N operations
                # (within the fallback's noise)
                assert run["n"] - run["loop_n"] >= 0.8 * (d - dl), (op, k, run)
            assert res["calls_" + op][k]["median"] >= 1, (op, k)
        # ours allocates nothing on the QoS 0 publish and idle paths, one write per publish
        assert res["alloc_idle"][k]["median"] == 0, k
        assert res["alloc_pub0"][k]["median"] == 0, k
        assert res["calls_pub0"][k]["median"] == 1, k
        assert res["calls_idle"][k]["median"] == 1, k
        # a QoS 1 round trip costs more than a QoS 0 publish, which costs more than an idle call
        assert res["ir_pub1"][k]["median"] > res["ir_pub0"][k]["median"] > res["ir_idle"][k]["median"], k
        assert 2000 < res["heap_connect"][k]["median"] < 64000, k
        assert 4 <= res["min_heap"][k]["median"] < 128, k
    assert res["heap_connect"]["ours-robust2"]["median"] > res["heap_connect"]["ours-simple2"]["median"]
