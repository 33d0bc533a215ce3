# Freezing umqtt.simple2 (with umqtt.errno, umqtt.subscriptions and umqtt.tls) into MicroPython firmware
# (MicroPython >= 1.20): add
#     include("/path/to/this/folder/simple2.manifest.py")
# to the board's manifest. manifest.py beside this file freezes robust2 as well.
#
# MicroPython's manifest tool allows one metadata() per package scope, and include()
# opens none (only require() does): manifest.py includes this file, and a board's own
# manifest may have set metadata() already. So it is set here only when nobody has.
import json

if metadata().version is None:
    metadata(
        description="MQTT 3.1.1 client whose check_msg() never blocks",
        version=json.load(open("package.json"))["version"],  # the manifest's folder is the cwd
        license="MIT",
    )
package("umqtt", files=["__init__.py", "errno.py", "simple2.py", "subscriptions.py", "tls.py"], opt=3)
