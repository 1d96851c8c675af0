"""`topgun wire decode` and invalid UTF-8: every string of a frame must be valid UTF-8, member
names and ignored values included. The server refuses an op holding bad bytes on its own; the
command, which prints whole messages, refuses the frame with one line naming the field."""
import msgpack
import pytest

from conftest import run

MARKER = b"@BAD@"
INVALID = b"x\xc3\x28\xffx"


def corrupted(value) -> bytes:
    frame = msgpack.packb(value)
    assert frame.count(MARKER) == 1
    return frame.replace(MARKER, INVALID)


def op(**extra):
    base = {"id": "1", "mapName": "m", "key": "k", "opType": "PUT",
            "record": {"value": {"a": 1}, "timestamp": {"millis": 1, "counter": 0, "nodeId": "n"}}}
    base.update(extra)
    return base


@pytest.mark.parametrize("value,field", [
    ({"type": "OP_BATCH", "payload": {"ops": [op(**{"@BAD@": 1})]}}, "payload.ops[0]"),
    ({"type": "OP_BATCH", "payload": {"ops": [op(extra=["@BAD@"])]}}, "payload.ops[0].extra[0]"),
    ({"type": "OP_BATCH", "payload": {"ops": [op()], "@BAD@": 1}}, None),
    ({"type": "OP_BATCH", "payload": {"ops": [op()]}, "extra": "@BAD@"}, "extra"),
    ({"type": "CLIENT_OP", "payload": op(key="@BAD@")}, "payload.key"),
    ({"type": "PING", "timestamp": 1, "@BAD@": 1}, None),
], ids=["op-member-name", "op-ignored-value", "payload-member-name", "message-ignored-value", "client-op-key", "ping-member-name"])
def test_invalid_utf8_anywhere_is_refused_with_one_line_and_status_1(topgun_bin, value, field):
    result = run(topgun_bin, "wire", "decode", "-", stdin=corrupted(value))
    assert result.returncode == 1, result.stdout
    assert result.stdout == b""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("topgun:") and "not valid UTF-8" in lines[0], lines
    if field:
        assert f"{field}: string is not valid UTF-8" in lines[0], lines
