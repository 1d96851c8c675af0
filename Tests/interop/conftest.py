"""Shared fixtures for the tests that drive the real `topgun` binary from Python."""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def fixtures_dir() -> pathlib.Path:
    override = os.environ.get("TOPGUN_FIXTURES")
    return pathlib.Path(override) if override else ROOT.parent / "shared" / "fixtures" / "topgun-wire"


def fixture_names():
    folder = fixtures_dir()
    # Missing fixtures are a failure, not a skip: the suite would prove nothing.
    assert folder.is_dir(), f"wire fixtures not found at {folder}"
    names = sorted(p.stem for p in folder.glob("*.msgpack"))
    assert len(names) >= 63, f"expected at least 63 fixtures in {folder}, found {len(names)}"
    return names


@pytest.fixture(scope="session")
def topgun_bin() -> str:
    path = os.environ.get("TOPGUN_BIN")
    assert path and os.access(path, os.X_OK), "TOPGUN_BIN must name the built topgun executable"
    return path


def run(binary: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], input=stdin, capture_output=True, timeout=60)


def from_fixture_json(value):
    """The fixture JSON convention back to Python values: Buffer objects become bytes."""
    if isinstance(value, dict):
        if set(value) == {"type", "data"} and value["type"] == "Buffer":
            return bytes(value["data"])
        return {k: from_fixture_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_fixture_json(v) for v in value]
    return value


def load_fixture_json(name: str):
    return json.loads((fixtures_dir() / f"{name}.json").read_text())
