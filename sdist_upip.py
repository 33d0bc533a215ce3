"""Source distributions for upip, MicroPython's installer before mip (firmware < 1.20):

    python3 sdist_upip.py              # -> dist/micropython-umqtt.simple2-VERSION.tar.gz
                                       #    dist/micropython-umqtt.robust2-VERSION.tar.gz
    python3 sdist_upip.py -d DIR       # into DIR
    python setup.py sdist_upip         # the same, through setuptools

Python 3.8+ standard library only. One tarball per package, as upip wants them: the
modules with comments, docstrings and blank lines removed (so that a small board can
hold and compile them; the result is checked to parse to the same code), PKG-INFO, and
for robust2 an egg-info/requires.txt naming simple2 so that upip installs it too.
Compressed with a 4 KB window: upip inflates with a small buffer on the device."""
import argparse
import ast
import io
import json
import os
import tarfile
import tokenize
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGES = {  # name -> (modules, requires, summary)
    "micropython-umqtt.simple2": (["__init__.py", "errno.py", "simple2.py", "subscriptions.py", "tls.py"], [],
                                  "MQTT 3.1.1 client for MicroPython whose check_msg() never blocks"),
    "micropython-umqtt.robust2": (["robust2.py", "store.py", "resubscribe.py", "snapshot.py"], ["micropython-umqtt.simple2"],
                                  "MQTT client for MicroPython that keeps QoS >= 1 messages across outages"),
}


def version():
    with open(os.path.join(HERE, "package.json")) as f:
        return json.load(f)["version"]


def _literal_statements(tree):
    """The statements that are only a string (docstrings and the like): they do nothing."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list):
                for stmt in body:
                    if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                            and isinstance(stmt.value.value, str)):
                        yield stmt, len(body) == 1


def _without_literal_statements(tree):
    class Strip(ast.NodeTransformer):
        def generic_visit(self, node):
            super().generic_visit(node)
            for field in ("body", "orelse", "finalbody"):
                body = getattr(node, field, None)
                if isinstance(body, list) and body:
                    kept = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                                    and isinstance(s.value.value, str))]
                    setattr(node, field, kept or [ast.Pass()])
            return node

    return ast.dump(Strip().visit(tree))


def _reindent(src):
    """One space per indentation level; no leading blanks on the continuation lines of a
    statement (inside brackets or after a backslash they mean nothing). The inside of
    multi-line strings is left as it is."""
    lines = src.splitlines()
    depth = 0
    indent = {}  # row -> new indentation of a row that starts a statement
    cont = set()  # continuation rows, to left-strip
    first = None  # row of the current logical line's first token
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            first = None
        elif tok.type in (tokenize.NL, tokenize.COMMENT):
            pass
        elif first is None:
            first = tok.start[0]
            indent[first] = depth
        elif tok.start[0] != first and not lines[tok.start[0] - 1][:tok.start[1]].strip():
            cont.add(tok.start[0])  # the first token on a later row of the same statement
    for row, d in indent.items():
        lines[row - 1] = " " * d + lines[row - 1].lstrip()
    for row in cont:
        lines[row - 1] = lines[row - 1].lstrip()
    return "\n".join(lines) + "\n"


def minify(src):
    """src without comments, docstrings (a lone one becomes `pass`), trailing blanks,
    blank lines and indentation beyond one space a level; checked to be the same code."""
    lines = src.splitlines()
    keep = set()  # rows (1-based) inside a multi-line string: left exactly as they are
    cuts = {}  # row -> column where a comment starts
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            cuts[tok.start[0]] = tok.start[1]
        elif tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
            keep.update(range(tok.start[0] + 1, tok.end[0]))  # its last row may be right-stripped
    for row, col in cuts.items():
        lines[row - 1] = lines[row - 1][:col]
    for stmt, alone in sorted(_literal_statements(ast.parse(src)), key=lambda s: -s[0].lineno):
        first, last = stmt.lineno, stmt.end_lineno
        head, tail = lines[first - 1][:stmt.col_offset], lines[last - 1][stmt.end_col_offset:]
        lines[first - 1:last] = [head + ("pass" if alone else "") + tail]
        keep.difference_update(range(first, last + 1))
        keep = {r - (last - first) if r > last else r for r in keep}
    out = []
    for row, line in enumerate(lines, 1):
        if row in keep:
            out.append(line)
        elif line.strip():
            out.append(line.rstrip())
    result = _reindent("\n".join(out) + "\n")
    if _without_literal_statements(ast.parse(result)) != _without_literal_statements(ast.parse(src)):
        raise ValueError("minify changed the code")
    return result


def build(outdir, minified=True):
    """Writes one upip tarball per package into outdir; returns their paths."""
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for name, (modules, requires, summary) in PACKAGES.items():
        base = "%s-%s" % (name, version())
        files = {"PKG-INFO": ("Metadata-Version: 1.1\nName: %s\nVersion: %s\nSummary: %s\nLicense: MIT\n"
                              % (name, version(), summary))}
        for m in modules:
            with open(os.path.join(HERE, "umqtt", m)) as f:
                src = f.read()
            files["umqtt/" + m] = minify(src) if minified and src.strip() else src
        if requires:
            files[name.replace("-", "_") + ".egg-info/requires.txt"] = "\n".join(requires) + "\n"
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for path, text in sorted(files.items()):
                data = text.encode()
                info = tarfile.TarInfo(base + "/" + path)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
        gz = zlib.compressobj(9, zlib.DEFLATED, 16 + 12)  # gzip, 4 KB window
        path = os.path.join(outdir, base + ".tar.gz")
        with open(path, "wb") as f:
            f.write(gz.compress(raw.getvalue()) + gz.flush())
        paths.append(path)
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write the upip tarballs of umqtt.simple2 and umqtt.robust2.")
    ap.add_argument("-d", "--dist-dir", default=os.path.join(HERE, "dist"), help="where to write them (default: dist)")
    a = ap.parse_args(argv)
    for p in build(a.dist_dir):
        print("wrote", os.path.relpath(p), os.path.getsize(p), "bytes")


if __name__ == "__main__":
    main()
