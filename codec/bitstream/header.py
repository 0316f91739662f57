"""The .nirv header: everything about the video and the network a decoder needs up front.

The common fields are declared once, in :class:`Header`: each carries its struct format and
bounds in its metadata, and packing, unpacking and validation all walk that one list. The
network is a kind (:mod:`nirvana.kinds`) and that kind's config, stored as a kind byte and a
length-prefixed config block whose fields the kind declares and bounds-checks itself.
Version 1 files (the ``siren`` kind only, its fields inline) are still read.

Example:
    >>> from nirvana.grid import GridConfig
    >>> h = Header(width=64, height=48, num_frames=7, fps_num=30, fps_den=1, group_size=3,
    ...            key_interval=10, num_groups=3, kind="grid", network=GridConfig(levels=4))
    >>> Header.unpack(h.pack()) == h
    True
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field, fields
from typing import Any

from codec.bitstream.group import ContextLayout
from codec.errors import BitstreamError
from nirvana.config import NetworkConfig, range_problem, spec
from nirvana.kinds import KINDS, by_code

U32_MAX = 2**32 - 1


@dataclass(frozen=True)
class Header:
    """Video size and timing, group layout, network kind and its config (the field table)."""

    width: int = spec("I", 1, 16384, None)
    height: int = spec("I", 1, 16384, None)
    num_frames: int = spec("I", 1, 10**7, None)
    fps_num: int = spec("I", 1, U32_MAX, None)
    fps_den: int = spec("I", 1, U32_MAX, None)
    group_size: int = spec("B", 1, 64, None)
    key_interval: int = spec("H", 1, 65535, None)
    num_groups: int = spec("I", 1, U32_MAX, None)  # regular_groups..num_frames (== regular_groups before v4)
    kind: str = field(default="siren")  # a name in nirvana.kinds.KINDS
    network: Any = field(default=None)  # the kind's config (NetworkConfig, GridConfig, ...)

    @property
    def regular_groups(self) -> int:
        """``ceil(num_frames / group_size)``: the fewest group chunks that hold every frame (and
        the count when every group but the last is full; version 4 ends groups early at cuts)."""
        return math.ceil(self.num_frames / self.group_size)

    def problem(self) -> str | None:
        """The first field that is out of bounds or inconsistent, as a sentence; None if valid."""
        problem = range_problem(self)
        if problem:
            return f"header {problem}"
        if not self.regular_groups <= self.num_groups <= self.num_frames:
            return (
                f"header field num_groups={self.num_groups} is outside "
                f"ceil(num_frames / group_size)..num_frames = {self.regular_groups}..{self.num_frames}"
            )
        if self.kind not in KINDS:
            return f"header field kind={self.kind!r} is not a known network kind"
        if type(self.network) is not KINDS[self.kind].config_type:
            return f"header network config is not a {self.kind} config"
        problem = range_problem(self.network)
        if problem:
            return f"header {self.kind} config {problem}"
        return None

    def pack(self) -> bytes:
        """The version-2 record: common fields, kind byte, u16 config length, config block.

        Raises ValueError if a field is invalid."""
        problem = self.problem()
        if problem:
            raise ValueError(problem)
        kind = KINDS[self.kind]
        block = kind.pack_config(self.network)
        common = _COMMON.pack(*(getattr(self, name) for name in _COMMON_FIELDS))
        return common + _KIND.pack(kind.code, len(block)) + block

    @classmethod
    def unpack(cls, data: bytes) -> Header:
        """Parse and validate a version-2 record; raises BitstreamError naming the bad field."""
        if len(data) < _COMMON.size + _KIND.size:
            raise BitstreamError(f"header has {len(data)} bytes, fewer than {_COMMON.size + _KIND.size}")
        values = dict(zip(_COMMON_FIELDS, _COMMON.unpack_from(data)))
        code, length = _KIND.unpack_from(data, _COMMON.size)
        block = data[_COMMON.size + _KIND.size:]
        if length != len(block):
            raise BitstreamError(f"header field config_length={length} does not match the "
                                 f"{len(block)} bytes that follow")
        _check_common(values)
        try:
            kind = by_code(code)
        except ValueError as e:
            raise BitstreamError(f"header field kind: {e}") from None
        try:
            network = kind.unpack_config(block, group_size=values["group_size"])
        except ValueError as e:
            raise BitstreamError(f"header {kind.name} config: {e}") from None
        return cls._validated(**values, kind=kind.name, network=network)

    @classmethod
    def unpack_v1(cls, data: bytes) -> Header:
        """Parse and validate a version-1 record (38 bytes, siren fields inline)."""
        if len(data) != V1_SIZE:
            raise BitstreamError(f"header has {len(data)} bytes, expected {V1_SIZE}")
        values = dict(zip(_V1_FIELDS, _V1.unpack(data)))
        common = {name: values[name] for name in _COMMON_FIELDS}
        _check_common(common)
        network = NetworkConfig(**{name: values[name] for name in _V1_NETWORK})
        return cls._validated(**common, kind="siren", network=network)

    @classmethod
    def _validated(cls, **values) -> Header:
        header = cls(**values)
        problem = header.problem()
        if problem:
            raise BitstreamError(problem)
        return header

    @property
    def context_layout(self) -> ContextLayout | None:
        """Where the network's context model sits, or None."""
        return ContextLayout.of(self.kind, self.network)

    @property
    def size(self) -> int:
        """Bytes of the packed (version 2) record."""
        return _COMMON.size + _KIND.size + len(KINDS[self.kind].pack_config(self.network))


def _check_common(values: dict) -> None:
    """Bounds of the common fields, before any kind config is looked at."""
    for f in fields(Header):
        meta = f.metadata
        if "lo" in meta and not meta["lo"] <= values[f.name] <= meta["hi"]:
            raise BitstreamError(f"header field {f.name}={values[f.name]} is outside {meta['lo']}..{meta['hi']}")


_COMMON_FIELDS = [f.name for f in fields(Header) if "fmt" in f.metadata]
_COMMON = struct.Struct("<" + "".join(f.metadata["fmt"] for f in fields(Header) if "fmt" in f.metadata))
_KIND = struct.Struct("<BH")  # kind code, config block length

# Version 1: one fixed record, the siren network's fields inline.
_V1_FIELDS = ["width", "height", "num_frames", "fps_num", "fps_den", "group_size", "patch_size",
              "key_interval", "hidden", "hidden_layers", "channels", "w0", "num_groups"]
_V1_NETWORK = ["group_size", "patch_size", "hidden", "hidden_layers", "channels", "w0"]
_V1 = struct.Struct("<IIIIIBHHHBHfI")
V1_SIZE = _V1.size
