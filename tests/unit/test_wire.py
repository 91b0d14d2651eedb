"""sandbox/wire.py: plain data round trips; anything else, and any malformed
message, is refused in words (the decoder reads what a hostile program wrote)."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sandbox"))
import wire  # noqa: E402  (a sibling module of the worker, imported as it imports it)

sys.path.pop(0)

PLAIN = [None, True, False, 0, -5, 2**70, -(2**100), 1.5, "hé\udcff", b"\x00x", [], (), {},
         [1, 2, 3], [1.0, 2.5], (1, 2), (1.0,), [1, 2**70], [True, 1], [1, "a", [2, (3,)]],
         {"a": 1, (1, 2): [3], 4: None}, [[[]]]]


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_plain_values_come_back_equal_and_of_the_same_types(value):
    decoded = wire.decode(wire.encode(value))
    assert decoded == value and repr(decoded) == repr(value)


@pytest.mark.parametrize("value", [np.arange(6).reshape(2, 3), np.array([1, 2], dtype=">i4"),
                                   np.zeros((0, 3)), np.array(3.0), np.array([True, False])])
def test_arrays_come_back_plain_native_and_writable(value):
    decoded = wire.decode(wire.encode(value))
    assert type(decoded) is np.ndarray and decoded.dtype.isnative and decoded.flags.writeable
    assert decoded.shape == value.shape and decoded.tolist() == value.tolist()


def test_numpy_numbers_keep_their_dtype():
    for value in (np.float32(1.5), np.int64(7), np.bool_(True)):
        decoded = wire.decode(wire.encode(value))
        assert type(decoded) is type(value) and decoded == value


def test_subclasses_cross_as_their_base_type():
    class Claim(float):
        __le__ = lambda self, other: True  # noqa: E731

    class Masked(np.ndarray):
        pass

    assert type(wire.decode(wire.encode(Claim(1e9)))) is float
    assert type(wire.decode(wire.encode(np.zeros(2).view(Masked)))) is np.ndarray


@pytest.mark.parametrize(("value", "words"), [
    (object(), "a value of type 'object'"),
    ({1, 2}, "a value of type 'set'"),
    (np.array([object()]), "a numpy value of dtype 'object'"),
    (2**40000, "an int of 40001 bits"),
], ids=["object", "set", "object array", "big int"])
def test_other_values_are_refused_in_words(value, words):
    with pytest.raises(wire.Unencodable, match=words):
        wire.encode(value)


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_is_capped_both_ways():
    with pytest.raises(wire.Unencodable, match="nested more than 100 deep"):
        wire.encode(nested(200))
    with pytest.raises(wire.WireError, match="nested more than 100 deep"):
        wire.decode(b"L\x01\x00\x00\x00" * 200 + b"n")


@pytest.mark.parametrize(("message", "words"), [
    (b"", "ends early"),
    (b"x", "unknown tag"),
    (b"i123", "ends early"),
    (b"nn", "1 bytes after the value"),
    (b"L\xff\xff\xff\xff", "a container longer than its message"),
    (b"s\x02\x00\x00\x00\xff\xfe", "not UTF-8"),
    (b"D\x02\x00\x00\x00L\x00\x00\x00\x00n", "not hashable"),
    (b"D\x01\x00\x00\x00n", "a key and no value"),
    (b"AO\x01" + struct.pack("<Q", 1) + b"\x00" * 8, "dtype 'O' is not allowed"),
    (b"A?\x21", "33 dimensions"),
    (b"Ad\x01" + struct.pack("<Q", 2**62), "larger than its message"),
    (b"Ad\x02" + struct.pack("<QQ", 0, 2**63), "Maximum allowed dimension"),
    (b"gd\x04\x00\x00\x00abcd", "a float64 number of 4 bytes"),
    (b"F\x03\x00\x00\x00abc", "partial items"),
    (b"I\xff\xff\x00\x00", "an int of 65535 bytes"),
])
def test_malformed_messages_are_refused_in_words(message, words):
    with pytest.raises(wire.WireError, match=words):
        wire.decode(message)
