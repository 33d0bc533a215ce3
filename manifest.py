# Freezing umqtt.simple2 and umqtt.robust2 (with umqtt.errno, umqtt.subscriptions,
# umqtt.tls, umqtt.store, umqtt.resubscribe and umqtt.snapshot) into MicroPython firmware
# (MicroPython >= 1.20): add
#     include("/path/to/this/folder/manifest.py")
# to the board's manifest (e.g. through FROZEN_MANIFEST). umqtt/_cpython.py is for
# CPython only and is not frozen.
#
# include() opens no metadata scope of its own in MicroPython's manifest tool, and a
# second metadata() in one scope is an error: metadata() is called only when the
# including manifest has not called it, and simple2.manifest.py does the same.
import json

if metadata().version is None:
    metadata(
        description="MQTT 3.1.1 client that keeps QoS >= 1 messages across outages",
        version=json.load(open("package.json"))["version"],  # the manifest's folder is the cwd
        license="MIT",
    )
include("simple2.manifest.py")
package("umqtt", files=["robust2.py", "store.py", "resubscribe.py", "snapshot.py"], opt=3)
