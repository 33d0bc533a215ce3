# Freezing umqtt.simple2 (with umqtt.errno) into MicroPython firmware: add
#     include("/path/to/this/folder/simple2.manifest.py")
# to the board's manifest. manifest.py beside this file freezes robust2 as well.
import json

metadata(
    description="MQTT 3.1.1 client whose check_msg() never blocks",
    version=json.load(open("package.json"))["version"],  # the manifest's folder is the cwd
    license="MIT",
)
package("umqtt", files=["__init__.py", "errno.py", "simple2.py", "tls.py"], opt=3)
