"""The tensor codec: exact round trips, clear errors on malformed frames."""

from __future__ import annotations

import numpy as np
import pytest

from app.queue import codec


def test_round_trip_keeps_names_dtypes_shapes_and_bytes() -> None:
    tensors = {
        "z": np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32),
        "label": np.array([1, 2, 3], dtype=np.int64),
        "img": np.zeros((2, 1, 4, 4), dtype=np.uint8),
        "empty": np.zeros((0, 5), dtype=np.float32),
        "scalar": np.array(2.5, dtype=np.float64),
    }
    decoded = codec.decode(codec.encode(tensors))
    assert list(decoded) == list(tensors)
    for name, value in tensors.items():
        assert decoded[name].dtype == value.dtype
        assert decoded[name].shape == value.shape
        assert decoded[name].tobytes() == value.tobytes()


def test_non_contiguous_input_is_packed_in_c_order() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4).T
    assert np.array_equal(codec.decode(codec.encode({"x": x}))["x"], x)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x01",
        b"\x01\x00\x01z\x00\x02\x03\x00\x00\x00",
        codec.encode({"x": np.ones(4, np.float32)})[:-1],
        codec.encode({"x": np.ones(4, np.float32)}) + b"\0",
    ],
)
def test_malformed_frames_raise_codec_error(frame: bytes) -> None:
    with pytest.raises(codec.CodecError):
        codec.decode(frame)


def test_unsupported_dtype_is_refused() -> None:
    with pytest.raises(codec.CodecError, match="dtype"):
        codec.encode({"x": np.array(["a"])})
