"""The .nirv header: everything about the video and the network a decoder needs up front.

The fields are declared once, in :class:`Header`: each carries its struct format and bounds in
its metadata, and packing, unpacking and validation all walk that one list. To add a field,
add one line (and bump the format version in :mod:`codec.bitstream.container`).

Example:
    >>> h = Header(width=64, height=48, num_frames=7, fps_num=30, fps_den=1, group_size=3,
    ...            patch_size=32, key_interval=10, hidden=64, hidden_layers=2, channels=16,
    ...            w0=30.0, num_groups=3)
    >>> Header.unpack(h.pack()) == h
    True
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field, fields
from typing import Any

from codec.errors import BitstreamError

U32_MAX = 2**32 - 1


def _spec(fmt: str, lo: float, hi: float, multiple_of: int = 1) -> Any:
    """A dataclass field carrying its little-endian struct format and inclusive bounds."""
    return field(metadata={"fmt": fmt, "lo": lo, "hi": hi, "multiple_of": multiple_of})


@dataclass(frozen=True)
class Header:
    """Video size and timing, group layout and network configuration (the field table)."""

    width: int = _spec("I", 1, 16384)
    height: int = _spec("I", 1, 16384)
    num_frames: int = _spec("I", 1, 10**7)
    fps_num: int = _spec("I", 1, U32_MAX)
    fps_den: int = _spec("I", 1, U32_MAX)
    group_size: int = _spec("B", 1, 16)
    patch_size: int = _spec("H", 4, 256, multiple_of=4)
    key_interval: int = _spec("H", 1, 65535)
    hidden: int = _spec("H", 1, 4096)
    hidden_layers: int = _spec("B", 1, 8)
    channels: int = _spec("H", 4, 256, multiple_of=4)
    w0: float = _spec("f", 1e-6, 1e6)  # SIREN frequency: finite and positive
    num_groups: int = _spec("I", 1, U32_MAX)  # must equal expected_groups

    @property
    def expected_groups(self) -> int:
        """``ceil(num_frames / group_size)``: the number of group chunks the file must hold."""
        return math.ceil(self.num_frames / self.group_size)

    def problem(self) -> str | None:
        """The first field that is out of bounds or inconsistent, as a sentence; None if valid."""
        for f in fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if not meta["lo"] <= value <= meta["hi"]:  # also rejects NaN
                return f"header field {f.name}={value} is outside {meta['lo']}..{meta['hi']}"
            if meta["multiple_of"] > 1 and value % meta["multiple_of"]:
                return f"header field {f.name}={value} is not a multiple of {meta['multiple_of']}"
        if self.num_groups != self.expected_groups:
            return (
                f"header field num_groups={self.num_groups} does not match "
                f"ceil(num_frames / group_size) = {self.expected_groups}"
            )
        return None

    def pack(self) -> bytes:
        """The fixed-size little-endian record; raises ValueError if a field is invalid."""
        problem = self.problem()
        if problem:
            raise ValueError(problem)
        return _STRUCT.pack(*(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def unpack(cls, data: bytes) -> Header:
        """Parse and validate a record from :meth:`pack`; raises BitstreamError if invalid."""
        if len(data) != SIZE:
            raise BitstreamError(f"header has {len(data)} bytes, expected {SIZE}")
        header = cls(*_STRUCT.unpack(data))
        problem = header.problem()
        if problem:
            raise BitstreamError(problem)
        return header


_STRUCT = struct.Struct("<" + "".join(f.metadata["fmt"] for f in fields(Header)))
SIZE = _STRUCT.size  # bytes of a packed header
