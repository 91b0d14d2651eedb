"""Values between the run function and the program's process: plain data only.

A split evaluation (program.py) passes the evolved function's arguments and its
return value through a pipe. What comes back from the program's side is
hostile, so it is never unpickled: this encoding knows None, bools, ints,
floats, str, bytes, lists, tuples, dicts and numpy arrays and scalars of
numeric dtypes (dtype, shape, raw bytes), and its decoder builds nothing else.
Every length is checked against the bytes that are there, the nesting depth
is capped, and a malformed message is a WireError, never a crash or a guess.

Imported by worker.py's siblings: standard library only (numpy is used where
the spec or the program imported it).
"""

from __future__ import annotations

import array
import struct
import sys
from typing import Any

MAX_DEPTH = 100  # nesting of lists, tuples and dicts
MAX_INT_BYTES = 4096  # a larger int is not an answer, it is an attack on str()
_NUMPY_CHARS = frozenset("?bBhHiIlLqQefdFD")  # numeric dtypes, native byte order
_INT64 = struct.Struct("<q")
_FLOAT = struct.Struct("<d")
_COUNT = struct.Struct("<I")
_SMALL = (1 << 63) - 1


class WireError(ValueError):
    """A message that does not decode (malformed, too deep, a type not allowed)."""


class Unencodable(TypeError):
    """A value that cannot cross: the message says which type and what can."""


ALLOWED = ("None, bool, int, float, str, bytes, lists, tuples, dicts, "
           "numpy arrays and numbers of numeric dtypes")


# --- encoding ---------------------------------------------------------------------


def encode(value: Any) -> bytes:
    """The value as bytes; Unencodable for anything outside the allowed types."""
    out = bytearray()
    _put(value, out, 0)
    return bytes(out)


def _put(value: Any, out: bytearray, depth: int) -> None:
    put = _PUT.get(type(value))
    if put is not None:
        put(value, out, depth)
    else:
        _put_other(value, out, depth)


def _put_float(value: float, out: bytearray, depth: int) -> None:
    out += b"d" + _FLOAT.pack(value)


def _put_dict(value: dict, out: bytearray, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise Unencodable(f"a value nested more than {MAX_DEPTH} deep")
    out += b"D" + _COUNT.pack(2 * len(value))  # keys and values, alternating
    for key, item in value.items():
        _put(key, out, depth + 1)
        _put(item, out, depth + 1)


def _put_int(value: int, out: bytearray, depth: int = 0) -> None:
    if -_SMALL <= value <= _SMALL:
        out += b"i" + _INT64.pack(value)
        return
    size = (value.bit_length() + 8) // 8
    if size > MAX_INT_BYTES:
        raise Unencodable(f"an int of {value.bit_length()} bits")
    _put_bytes(b"I", value.to_bytes(size, "little", signed=True), out)


def _put_bytes(tag: bytes, data: bytes, out: bytearray) -> None:
    out += tag + _COUNT.pack(len(data))
    out += data


def _put_sequence(value: list | tuple, out: bytearray, depth: int) -> None:
    """Sequences of floats or of small ints pack in C: the common values stay cheap."""
    listed = type(value) is list
    if value:
        first = type(value[0])
        if first is float and all(type(item) is float for item in value):
            _put_bytes(b"F" if listed else b"G", array.array("d", value).tobytes(), out)
            return
        if first is int and all(type(item) is int for item in value):
            try:
                _put_bytes(b"J" if listed else b"K", array.array("q", value).tobytes(), out)
                return
            except OverflowError:  # a big int among them
                pass
    if depth >= MAX_DEPTH:
        raise Unencodable(f"a value nested more than {MAX_DEPTH} deep")
    out += (b"L" if listed else b"T") + _COUNT.pack(len(value))
    for item in value:
        _put(item, out, depth + 1)


def _put_other(value: Any, out: bytearray, depth: int) -> None:
    """Subclasses as their base type, numpy values as raw bytes; else Unencodable."""
    numpy = sys.modules.get("numpy")
    if numpy is not None and type(value) is numpy.ndarray:
        _PUT[numpy.ndarray] = _put_array  # the next one straight away
        _put_array(value, out)
    elif numpy is not None and isinstance(value, numpy.ndarray):
        _put_array(numpy.asarray(value), out)  # a subclass: its plain array
    elif numpy is not None and isinstance(value, numpy.generic):
        dtype = _native(value.dtype)
        _put_bytes(b"g" + dtype.char.encode(), numpy.asarray(value, dtype=dtype).tobytes(), out)
    elif isinstance(value, int):
        _put_int(int.__index__(value), out)
    elif isinstance(value, float):
        out += b"d" + _FLOAT.pack(float.__float__(value))
    elif isinstance(value, str):
        _put_bytes(b"s", str.__str__(value).encode("utf-8", "surrogatepass"), out)
    elif isinstance(value, (list, tuple)):
        _put_sequence(list(list.__iter__(value)) if isinstance(value, list)
                      else tuple(tuple.__iter__(value)), out, depth)
    elif isinstance(value, dict):
        _put(dict(dict.items(value)), out, depth)
    else:
        raise Unencodable(f"a value of type '{type(value).__name__}' (only {ALLOWED})")


def _put_array(value: Any, out: bytearray, depth: int = 0) -> None:
    dtype = value.dtype
    if dtype.char not in _NUMPY_CHARS or not dtype.isnative:
        dtype = _native(dtype)
        value = value.astype(dtype)
    out += b"A%c%c" % (ord(dtype.char), value.ndim)
    out += _dims(value.ndim).pack(*value.shape)
    out += value.tobytes()  # C order


def _dims(ndim: int) -> struct.Struct:
    dims = _DIMS.get(ndim)
    if dims is None:
        dims = _DIMS[ndim] = struct.Struct(f"<{ndim}Q")
    return dims


_DIMS: dict[int, struct.Struct] = {}


_PUT = {
    float: _put_float,
    int: _put_int,
    type(None): lambda value, out, depth: out.extend(b"n"),
    bool: lambda value, out, depth: out.extend(b"t" if value else b"f"),
    str: lambda value, out, depth: _put_bytes(b"s", value.encode("utf-8", "surrogatepass"), out),
    bytes: lambda value, out, depth: _put_bytes(b"b", value, out),
    list: _put_sequence,
    tuple: _put_sequence,
    dict: _put_dict,
}


def _native(dtype: Any) -> Any:
    if dtype.char not in _NUMPY_CHARS:
        raise Unencodable(f"a numpy value of dtype '{dtype}' (only numeric dtypes)")
    return dtype if dtype.isnative else dtype.newbyteorder("=")


# --- decoding ---------------------------------------------------------------------


def decode(data: bytes) -> Any:
    """The value `encode` made; WireError for anything else (all of it read)."""
    reader = _Reader(bytes(data))
    try:
        value = reader.value(0)
    except WireError:
        raise
    except (ValueError, TypeError, OverflowError) as error:  # e.g. numpy refusing a shape
        raise WireError(f"{type(error).__name__}: {error}") from None
    if reader.at != len(reader.data):
        raise WireError(f"{len(reader.data) - reader.at} bytes after the value")
    return value


class _Reader:
    """A position in the message; every read checks it stays inside."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def skip(self, size: int) -> int:
        """Where `size` bytes start; the position moves past them."""
        start = self.at
        if size < 0 or start + size > len(self.data):
            raise WireError("the message ends early")
        self.at = start + size
        return start

    def take(self, size: int) -> bytes:
        start = self.skip(size)
        return self.data[start : start + size]

    def count(self) -> int:
        return _COUNT.unpack_from(self.data, self.skip(4))[0]

    def value(self, depth: int) -> Any:
        read = _READ.get(self.data[self.skip(1)])
        if read is None:
            raise WireError(f"unknown tag {self.data[self.at - 1:self.at]!r}")
        return read(self, depth)

    def container(self, depth: int) -> list:
        if depth >= MAX_DEPTH:
            raise WireError(f"nested more than {MAX_DEPTH} deep")
        size = self.count()
        if size > len(self.data) - self.at:  # every item takes a byte at least
            raise WireError("a container longer than its message")
        return [self.value(depth + 1) for _ in range(size)]

    def dtype(self) -> tuple[Any, Any]:
        char = chr(self.data[self.skip(1)])
        dtype = _DTYPES.get(char)
        if dtype is None:
            if char not in _NUMPY_CHARS:
                raise WireError(f"numpy dtype {char!r} is not allowed")
            try:
                import numpy
            except ImportError:
                raise WireError("a numpy value, and numpy cannot be imported here") from None
            dtype = _DTYPES[char] = numpy.dtype(char)
        return sys.modules["numpy"], dtype


_DTYPES: dict[str, Any] = {}


def _dict(reader: _Reader, depth: int) -> dict:
    items = reader.container(depth)  # keys and values, alternating
    if len(items) % 2:
        raise WireError("a dict with a key and no value")
    try:
        return dict(zip(items[::2], items[1::2], strict=True))
    except TypeError:  # an unhashable key
        raise WireError("a dict key that is not hashable") from None


def _array(reader: _Reader, depth: int) -> Any:
    numpy, dtype = reader.dtype()
    ndim = reader.data[reader.skip(1)]
    if ndim > 32:
        raise WireError(f"an array of {ndim} dimensions")
    shape = _dims(ndim).unpack_from(reader.data, reader.skip(8 * ndim))
    count = 1
    for extent in shape:
        count *= extent
        if count * dtype.itemsize > len(reader.data):
            raise WireError("an array larger than its message")
    start = reader.skip(count * dtype.itemsize)
    flat = numpy.frombuffer(reader.data, dtype, count, start).copy()  # owned and writable
    return flat if ndim == 1 else flat.reshape(shape)


def _number(reader: _Reader, depth: int) -> Any:
    numpy, dtype = reader.dtype()
    start = reader.skip(reader.count())
    if reader.at - start != dtype.itemsize:
        raise WireError(f"a {dtype} number of {reader.at - start} bytes")
    return numpy.frombuffer(reader.data, dtype, 1, start)[0]


def _text(reader: _Reader, depth: int) -> str:
    try:
        return str(reader.take(reader.count()), "utf-8", "surrogatepass")
    except UnicodeDecodeError as error:
        raise WireError(f"a string that is not UTF-8: {error.reason}") from None


def _big(reader: _Reader, depth: int) -> int:
    size = reader.count()
    if size > MAX_INT_BYTES:
        raise WireError(f"an int of {size} bytes")
    return int.from_bytes(reader.take(size), "little", signed=True)


def _packed(code: str, listed: bool):
    def read(reader: _Reader, depth: int) -> list | tuple:
        raw = reader.take(reader.count())
        if len(raw) % 8:
            raise WireError("a packed sequence of partial items")
        items = array.array(code)
        items.frombytes(raw)
        return items.tolist() if listed else tuple(items)

    return read


_READ = {
    ord("n"): lambda reader, depth: None,
    ord("t"): lambda reader, depth: True,
    ord("f"): lambda reader, depth: False,
    ord("i"): lambda reader, depth: _INT64.unpack_from(reader.data, reader.skip(8))[0],
    ord("I"): _big,
    ord("d"): lambda reader, depth: _FLOAT.unpack_from(reader.data, reader.skip(8))[0],
    ord("s"): _text,
    ord("b"): lambda reader, depth: reader.take(reader.count()),
    ord("F"): _packed("d", True),
    ord("G"): _packed("d", False),
    ord("J"): _packed("q", True),
    ord("K"): _packed("q", False),
    ord("L"): lambda reader, depth: reader.container(depth),
    ord("T"): lambda reader, depth: tuple(reader.container(depth)),
    ord("D"): _dict,
    ord("A"): _array,
    ord("g"): _number,
}
