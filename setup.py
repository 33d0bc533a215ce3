"""pip install .          -> umqtt.simple2, umqtt.robust2 and umqtt.store on CPython
python setup.py sdist_upip -> the upip tarballs for old MicroPython firmware (sdist_upip.py;
                              python3 sdist_upip.py does the same without setuptools)

The version is package.json's, the one place it is kept."""
import os
import sys

from setuptools import Command, setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdist_upip  # noqa: E402

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.rst")) as f:
    readme = f.read()



class SdistUpip(Command):
    description = "build upip source distributions (minified) into dist/"
    user_options = [("dist-dir=", "d", "where to put them (default: dist)")]

    def initialize_options(self):
        self.dist_dir = None

    def finalize_options(self):
        self.dist_dir = self.dist_dir or "dist"

    def run(self):
        sdist_upip.main(["-d", self.dist_dir])


setup(
    name="umqtt-simple2-robust2",
    version=sdist_upip.version(),
    description="MQTT 3.1.1 clients for MicroPython and CPython: umqtt.simple2 and umqtt.robust2",
    long_description=readme,
    long_description_content_type="text/x-rst",
    license="MIT",
    packages=["umqtt"],
    python_requires=">=3.8",
    classifiers=[
        "Programming Language :: Python :: Implementation :: MicroPython",
        "Programming Language :: Python :: Implementation :: CPython",
        "License :: OSI Approved :: MIT License",
        "Topic :: Communications",
    ],
    cmdclass={"sdist_upip": SdistUpip},
)
