"""Baseline: Python's msgpack C extension decoding the same frame into plain dicts."""
import json
import sys
import time

import msgpack

assert msgpack.version >= (1, 0), msgpack.version
from msgpack import _cmsgpack  # noqa: F401  (fails if only the pure-Python fallback exists)

frame = open(sys.argv[1], "rb").read()
unpackb = msgpack.unpackb
best = 0.0
for _ in range(5):
    calls = 0
    start = time.perf_counter()
    while True:
        for _ in range(32):
            unpackb(frame, raw=False)
        calls += 32
        elapsed = time.perf_counter() - start
        if elapsed >= 0.6:
            break
    best = max(best, calls / elapsed)
print(json.dumps({"figure": "python_msgpack_decode", "messages_per_s": round(best, 1), "mb_per_s": round(best * len(frame) / 1e6, 1)}))
