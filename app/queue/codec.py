"""Tensors on the wire: a compact, pickle-free binary codec.

Layout (little endian): u16 tensor count, then per tensor: u8 name length, name (utf-8),
u8 dtype code, u8 rank, rank x u32 dims, the raw C-order bytes.
"""

from __future__ import annotations

import struct

import numpy as np

_DTYPES: tuple[np.dtype, ...] = tuple(
    np.dtype(t)
    for t in ("float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")
)
_CODES = {dt: i for i, dt in enumerate(_DTYPES)}
_MAX_RANK = 8


class CodecError(ValueError):
    """Bytes that are not a valid tensor frame."""


def encode(tensors: dict[str, np.ndarray]) -> bytes:
    """Pack named arrays into one frame."""
    parts = [struct.pack("<H", len(tensors))]
    for name, array in tensors.items():
        arr = np.require(array, requirements="C")  # keeps 0-d arrays 0-d
        code = _CODES.get(arr.dtype)
        if code is None:
            raise CodecError(f"dtype {arr.dtype} is not supported on the wire")
        raw_name = name.encode()
        if len(raw_name) > 255 or arr.ndim > _MAX_RANK:
            raise CodecError(f"tensor {name!r}: name too long or rank {arr.ndim} too high")
        parts.append(bytes([len(raw_name)]) + raw_name)
        parts.append(struct.pack(f"<BB{arr.ndim}I", code, arr.ndim, *arr.shape))
        parts.append(arr.tobytes())
    return b"".join(parts)


def decode(frame: bytes) -> dict[str, np.ndarray]:
    """Unpack a frame made by `encode`; arrays are read-only views on the frame."""
    view = memoryview(frame)
    try:
        (count,) = struct.unpack_from("<H", view, 0)
        offset = 2
        out: dict[str, np.ndarray] = {}
        for _ in range(count):
            name_len = view[offset]
            name = bytes(view[offset + 1 : offset + 1 + name_len]).decode()
            offset += 1 + name_len
            code, rank = struct.unpack_from("<BB", view, offset)
            shape = struct.unpack_from(f"<{rank}I", view, offset + 2)
            offset += 2 + 4 * rank
            dtype = _DTYPES[code]
            size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if offset + size > len(view):
                raise CodecError("frame is truncated")
            out[name] = np.frombuffer(
                view, dtype=dtype, count=size // dtype.itemsize, offset=offset
            ).reshape(shape)
            offset += size
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise CodecError(f"malformed tensor frame: {exc}") from exc
    if offset != len(view):
        raise CodecError("trailing bytes after the last tensor")
    return out
