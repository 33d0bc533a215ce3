"""README.rst renders without a warning, and the commands and files it names exist."""
import os
import re

from conftest import REPO


def test_readme_is_valid_rst_and_its_paths_exist():
    import docutils.core

    src = open(os.path.join(REPO, "README.rst")).read()
    docutils.core.publish_string(src, writer="null",
                                 settings_overrides={"report_level": 1, "halt_level": 2})
    for cmd in ("bash examples/demo.sh", "bash tests/run.sh", "python3 bench/bench.py"):
        assert cmd in src, cmd
    for path in set(re.findall(r"\b((?:examples|tests|bench|umqtt)/[\w./]+\.(?:py|sh|png))", src)):
        assert os.path.exists(os.path.join(REPO, path)), path
