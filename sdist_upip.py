"""Source distributions for upip, MicroPython's installer before mip (firmware < 1.20):

    python setup.py sdist_upip          # -> dist/micropython-umqtt.simple2-VERSION.tar.gz
                                        #    dist/micropython-umqtt.robust2-VERSION.tar.gz

One tarball per package, as upip wants them: the modules (minified: comments,
docstrings and annotations removed by python-minifier, so that a small board can hold
and compile them), PKG-INFO, and for robust2 an egg-info/requires.txt naming simple2 so
that upip installs it too. Compressed with a 4 KB window: upip inflates with a small
buffer on the device."""
import io
import json
import os
import tarfile
import zlib

from setuptools import Command

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGES = {  # name -> (modules, requires, summary)
    "micropython-umqtt.simple2": (["__init__.py", "errno.py", "simple2.py", "tls.py"], [],
                                  "MQTT 3.1.1 client for MicroPython whose check_msg() never blocks"),
    "micropython-umqtt.robust2": (["robust2.py", "store.py"], ["micropython-umqtt.simple2"],
                                  "MQTT client for MicroPython that keeps QoS >= 1 messages across outages"),
}


def version():
    with open(os.path.join(HERE, "package.json")) as f:
        return json.load(f)["version"]


def minify(src):
    import python_minifier

    return python_minifier.minify(src, remove_annotations=True, remove_pass=True, remove_literal_statements=True,
                                  rename_locals=True, rename_globals=False, combine_imports=False,
                                  hoist_literals=False, remove_object_base=False, convert_posargs_to_args=False)


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


class SdistUpip(Command):
    description = "build upip source distributions (minified) into dist/"
    user_options = [("dist-dir=", "d", "where to put them (default: dist)")]

    def initialize_options(self):
        self.dist_dir = None

    def finalize_options(self):
        self.dist_dir = self.dist_dir or "dist"

    def run(self):
        for p in build(self.dist_dir):
            print("wrote", p, os.path.getsize(p), "bytes")
