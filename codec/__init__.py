"""NIRVANA codec, the application: video I/O, entropy coding, the .nirv container, the
encode/decode pipelines and the CLI. The representation itself lives in :mod:`nirvana`.

``encode`` and ``decode`` are imported on first use, so that decoding never loads the
training code.

Example:
    >>> import codec
    >>> report = codec.encode("samples/carphone.mp4", "carphone.nirv", stop=30)  # doctest: +SKIP
    >>> codec.decode("carphone.nirv", "carphone.mp4")                             # doctest: +SKIP
"""

from importlib import import_module

from codec.errors import BitstreamError, CodecError, InputError

_LAZY = {"encode": "codec.encoder", "EncodeReport": "codec.encoder",
         "decode": "codec.decoder", "DecodeReport": "codec.decoder"}

__all__ = ["encode", "decode", "EncodeReport", "DecodeReport", "CodecError", "InputError", "BitstreamError"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'codec' has no attribute {name!r}")
