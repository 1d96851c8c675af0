"""Prints the benchmark figures with their ratios to the same-run baselines."""
import json
import sys

figures = {}
for path in sys.argv[1:]:
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            row = json.loads(line)
            figures[row["figure"]] = row

swift = figures["op_batch_decode"]["messages_per_s"]
python = figures["python_msgpack_decode"]["messages_per_s"]
print()
print(f"OP_BATCH(100) decode to typed messages: {swift:,.0f} msg/s ({figures['op_batch_decode']['mb_per_s']:.1f} MB/s, frame {figures['op_batch_decode']['frame_bytes']:.0f} B)")
print(f"  baseline, Python msgpack C extension to dicts: {python:,.0f} msg/s -> ratio {swift / python:.2f}x")
print(f"OP_BATCH(100) encode: {figures['op_batch_encode']['messages_per_s']:,.0f} msg/s ({figures['op_batch_encode']['mb_per_s']:.1f} MB/s)")
print(f"LWW merge (with Merkle update): {figures['lww_merge']['ops_per_s']:,.0f} ops/s")
print(f"Merkle update: {figures['merkle_update']['ops_per_s']:,.0f} ops/s")
