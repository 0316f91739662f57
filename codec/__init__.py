"""NIRVANA codec, the application: video I/O, entropy coding, the .nirv container, the
encode/decode pipelines and the CLI. The representation itself lives in :mod:`nirvana`.

Example:
    >>> import codec
    >>> report = codec.encode("samples/carphone.mp4", "carphone.nirv", stop=30)  # doctest: +SKIP
    >>> codec.decode("carphone.nirv", "carphone.mp4")                             # doctest: +SKIP
"""

from codec.decoder import DecodeReport, decode
from codec.encoder import EncodeReport, encode
from codec.errors import BitstreamError, CodecError, InputError

__all__ = ["encode", "decode", "EncodeReport", "DecodeReport", "CodecError", "InputError", "BitstreamError"]
