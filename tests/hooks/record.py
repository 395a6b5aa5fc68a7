"""A traffic hook for the tests: appends what it was told, and when, to $HOOK_LOG; `fail` exits 3."""

import json
import os
import sys
from datetime import UTC, datetime

record = {
    "at": datetime.now(UTC).isoformat(),
    **{key: value for key, value in os.environ.items() if key.startswith("BLUEGREEN_") and key != "BLUEGREEN_HOOK"},
}
with open(os.environ["HOOK_LOG"], "a") as log:
    log.write(json.dumps(record) + "\n")
print(f"hook {record['BLUEGREEN_HOOK_PHASE']} saw {record['BLUEGREEN_COLOR']} {record['BLUEGREEN_VERSION']}")
if sys.argv[1:] == ["fail"]:
    print("the smoke test found a problem", file=sys.stderr)
    sys.exit(3)
