"""An independent MessagePack implementation (Python's msgpack) against ours.

For every message type of the fixture corpus: what Python encodes, `topgun wire decode`
reads; what `topgun wire encode` writes, Python reads; and both equal the fixture.
"""
import json
import math

import msgpack
import pytest

from conftest import fixture_names, from_fixture_json, load_fixture_json, run

NAMES = fixture_names()


def same(a, b) -> bool:
    """Equality by value: key order ignored, 1.0 equals 1, bytes compared as bytes."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=0, abs_tol=0) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("name", NAMES)
def test_we_decode_what_python_encodes(topgun_bin, name):
    expected = from_fixture_json(load_fixture_json(name))
    frame = msgpack.packb(expected, use_bin_type=True)
    result = run(topgun_bin, "wire", "decode", "-", stdin=frame)
    assert result.returncode == 0, result.stderr.decode()
    decoded = from_fixture_json(json.loads(result.stdout))
    assert same(decoded, expected)


@pytest.mark.parametrize("name", NAMES)
def test_python_decodes_what_we_encode(topgun_bin, name):
    fixture_json = load_fixture_json(name)
    result = run(topgun_bin, "wire", "encode", "-", stdin=json.dumps(fixture_json).encode())
    assert result.returncode == 0, result.stderr.decode()
    decoded = msgpack.unpackb(result.stdout, raw=False, strict_map_key=True)
    assert same(decoded, from_fixture_json(fixture_json))
    # No extension types on output: Python would have returned an ExtType.
    assert "ExtType" not in repr(decoded)


@pytest.mark.parametrize("name", NAMES)
def test_decode_of_the_real_client_bytes_prints_the_fixture(topgun_bin, name):
    from conftest import fixtures_dir

    frame = (fixtures_dir() / f"{name}.msgpack").read_bytes()
    result = run(topgun_bin, "wire", "decode", str(fixtures_dir() / f"{name}.msgpack"))
    assert result.returncode == 0, result.stderr.decode()
    assert same(json.loads(result.stdout), load_fixture_json(name))
    assert same(msgpack.unpackb(frame, raw=False), from_fixture_json(load_fixture_json(name)))


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\xc1",
        b"\x93\x01\x02",  # truncated array
        b"\xdb\xff\xff\xff\xff",  # 4 GiB string declared
        b"\x81\xa4type\xa7NOTHING",  # unknown type
        b"\x81\xa4type\x01",  # type is not a string
        msgpack.packb([1, 2, 3]),  # not a map
        msgpack.packb({"type": "PING", "timestamp": "soon"}),  # wrong field type
        msgpack.packb({"type": "PING"}) + b"\x00",  # trailing bytes
        b"\x91" * 10000,  # nesting far past the limit
    ],
)
def test_garbage_is_rejected_with_one_line_and_status_1(topgun_bin, garbage):
    result = run(topgun_bin, "wire", "decode", "-", stdin=garbage)
    assert result.returncode == 1
    assert result.stdout == b""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("topgun:")


@pytest.mark.parametrize(
    "text",
    [b"", b"{", b'{"type":"PING"', b"[1,2]", b'{"type":"NOPE"}', b'{"type":"PING","timestamp":1} x', b"\xff\xfe"],
)
def test_encode_rejects_bad_json_with_status_1(topgun_bin, text):
    result = run(topgun_bin, "wire", "encode", "-", stdin=text)
    assert result.returncode == 1
    assert result.stdout == b""
    assert len(result.stderr.decode().strip().splitlines()) == 1


def test_hex_frames_of_the_real_client_decode(topgun_bin):
    # protocol.md §6.2: frames produced by msgpackr exactly as the client sends them.
    frames = {
        "de0002a474797065a450494e47a974696d657374616d70cb4278bcfe56800000": {"type": "PING", "timestamp": 1700000000000},
        "de0002a474797065a441555448a5746f6b656ea3616263": {"type": "AUTH", "token": "abc"},
        "de0001a474797065ac4445564943455f48454c4c4f": {"type": "DEVICE_HELLO"},
        "de0003a474797065a953594e435f494e4954a76d61704e616d65a5746f646f73b16c61737453796e6354696d657374616d7000": {
            "type": "SYNC_INIT",
            "mapName": "todos",
            "lastSyncTimestamp": 0,
        },
    }
    for hex_frame, expected in frames.items():
        result = run(topgun_bin, "wire", "decode", "-", stdin=bytes.fromhex(hex_frame))
        assert result.returncode == 0, result.stderr.decode()
        assert same(json.loads(result.stdout), expected)
