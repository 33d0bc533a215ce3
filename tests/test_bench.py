"""bench/bench.py in its quick mode (1 run, small counts, ours plus whichever peers are
already in bench/peers/: no network): it runs, and its outputs hold every figure. And,
without running it: README.rst's benchmark block is exactly what the committed
bench/bench.json renders to, the committed chart is the one drawn from it, and the prose
of README's Figures section quotes no number that is not in a generated block."""
import copy
import hashlib
import importlib.util
import json
import os
import re
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
    # the run's summary renders to a README block holding every figure of ours
    summ = json.loads((out / "bench.json").read_text())
    assert summ["meta"]["runs"] == 1 and summ["meta"]["quick"] is True
    block = bench.readme_block(summ)
    assert block.startswith(bench.BEGIN) and block.endswith(bench.END)
    for fig in bench.FIGURES:
        assert bench.SHORT[fig] in block, fig
        line = [x for x in block.splitlines() if x.startswith(bench.SHORT[fig] + "  ")][0]
        for k in ours:
            assert bench.fmt(doc["results"][fig][k]["median"]) in line.split("  ", 1)[1], (fig, k, line)
    assert set(summ["mpy"]["loaded"]["ours-simple2"]) == {"__init__.mpy", "simple2.mpy"}
    assert "robust2.mpy" in summ["mpy"]["loaded"]["ours-robust2"]
    # .mpy bytes loaded is the sum of the files loaded
    for k in ours:
        assert doc["results"]["mpy_bytes"][k]["median"] == sum(summ["mpy"]["files"][f]
                                                              for f in summ["mpy"]["loaded"][k]), k


def test_write_refuses_quick():
    p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "bench.py"), "--quick", "--write"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "--write" in p.stderr, p.stdout + p.stderr


def committed():
    with open(bench.JSON_PATH) as f:
        doc = json.load(f)
    with open(bench.README) as f:
        return doc, f.read()


def test_readme_block_is_what_committed_bench_json_renders_to():
    doc, text = committed()
    assert text.count(bench.BEGIN) == 1 and text.count(bench.END) == 1
    i, j = text.index(bench.BEGIN), text.index(bench.END) + len(bench.END)
    assert text[i:j] == bench.readme_block(doc), \
        "README.rst's benchmark block is not what bench/bench.json makes: run python3 bench/bench.py --write"
    # the committed run is a full one, of every client, and measured ours completely
    m = doc["meta"]
    assert not m["quick"] and m["runs"] >= 5 and not m["missing_peers"], m
    assert m["command"].startswith("python3 bench/bench.py") and "--write" in m["command"]
    assert re.fullmatch(r"[0-9a-f]{40}", m["umqtt_commit"]) and m["umqtt_changed"] is False, m
    assert list(doc["clients"]) == list(bench.CLIENTS) and list(doc["results"]) == list(bench.FIGURES)
    for fig in bench.FIGURES:
        for k, c in bench.CLIENTS.items():
            r = doc["results"][fig][k]
            assert len(r["values"]) == r["n"] == m["runs"], (fig, k)
            if c[3]:
                assert r["state"] == "ok" and None not in r["values"], (fig, k)
            if r["median"] is not None:
                vals = [v for v in r["values"] if v is not None]
                assert r["min"] == min(vals) and r["max"] == max(vals), (fig, k)
    # the chart in the block is the one drawn from this file
    if doc.get("chart"):
        with open(os.path.join(REPO, doc["chart"]["path"]), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == doc["chart"]["sha256"], "bench/chart.png is another run's"


def test_block_follows_the_json():
    # every figure of the table comes from the JSON: change one, and the block changes
    doc, text = committed()
    block = bench.readme_block(doc)
    for fig in ("qos0_rate", "mpy_bytes"):
        d = copy.deepcopy(doc)
        r = d["results"][fig]["ours-simple2"]
        r["median"] = r["median"] * 3 + 7
        other = bench.readme_block(d)
        assert other != block and other not in text, fig
        assert bench.fmt(r["median"]) in other
    d = copy.deepcopy(doc)
    d["meta"]["date"] = "1999-01-01 00:00 UTC"
    assert "1999-01-01 00:00 UTC" in bench.readme_block(d)
    d = copy.deepcopy(doc)
    d["mpy"]["files"]["simple2.mpy"] += 1
    assert bench.readme_block(d) != block


def test_write_regenerates_readme_block(tmp_path):
    # --write's writer on a README whose block is stale gives back the committed README
    doc, text = committed()
    i, j = text.index(bench.BEGIN), text.index(bench.END) + len(bench.END)
    readme = tmp_path / "README.rst"
    readme.write_text(text[:i] + bench.BEGIN + "\n\nstale\n\n" + bench.END + text[j:])
    out = tmp_path / "bench.json"
    d = dict(doc)
    chart = d.pop("chart", None)
    bench.write(d, str(out), str(readme), str(tmp_path / "chart.png"), draw=False)
    if chart:  # without a chart the block has no image
        assert readme.read_text() == text.replace("\n\n.. image:: %s" % chart["path"], "")
    else:
        assert readme.read_text() == text
    assert json.loads(out.read_text()) == d


def figures_section(text):
    start = text.index("\nFigures\n-------\n")
    return text[start: text.index("\nSoak\n~~~~\n", start)]


def test_figures_prose_quotes_only_generated_numbers():
    # README's Figures section (up to Soak), its generated blocks taken out: every number
    # it still holds is one a generated block shows
    text = committed()[1]
    sec = figures_section(text)
    blocks = ""
    for begin, end in ((bench.BEGIN, bench.END), (".. devcost-begin", ".. devcost-end")):
        i, j = sec.index(begin), sec.index(end) + len(end)
        blocks += sec[i:j] + "\n"
        sec = sec[:i] + sec[j:]
    num = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
    shown = set(num.findall(blocks))
    assert "2.2.0" in shown and len(shown) > 50  # the scan works
    stray = [n for n in num.findall(sec) if n not in shown]
    assert not stray, "README's Figures prose quotes numbers no generated block has: %s" % stray
