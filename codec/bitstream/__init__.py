"""The .nirv file format: the one place that documents its bytes.

All integers are little-endian; ``u8/u16/u32/u64`` are unsigned, ``f16/f32`` IEEE floats.
CRC32 is zlib's (``zlib.crc32``). Offsets are from the start of the file.

File (format version 9), written by :class:`NirvWriter`, read by :class:`NirvReader`::

    prelude (8 + header size + 4 bytes; written last, by seeking back: the header is final
    only at the end, and its size is known from the start)
      0   4s   magic            b"NIRV"
      4   u16  version          9 (1 to 8 are still read; a reader refuses newer versions
                                and asks for an upgrade)
      6   u16  header size      S
      8   ...  header           see "Header" below (S bytes)
      8+S u32  header CRC32     of the header bytes
    group chunks, back to back from the end of the prelude, one per group in order
      +0  u32  length           payload bytes
      +4  u32  CRC32            of the payload
      +8  ...  payload          see "Group payload" below
    index at index_offset, 6 bytes per group (version 4: 14, a u64 offset of the group's
    chunk first; versions 1-3: 13, the offset and no frames field); the chunks tile the file,
    so group g's chunk starts at the end of the prelude plus the chunks before it
      +0  u32  length           payload bytes (must match the chunk)
      +4  u8   flags            bit 0: key group (intra only); other bits 0; group 0 is a key
      +5  u8   frames           frames in the group, 1..group_size, summing to num_frames: a
                                group may end early before a scene cut, and the group after
                                it is a key; before version 4 every group but the last holds
                                group_size frames
    footer (last 20 bytes)
      +0  u64  index_offset     == end of the last chunk
      +8  u32  group count      == header num_groups
      +12 u32  index CRC32      of the index entries followed by the 12 bytes above
      +16 4s   end magic        b"VRIN" (missing: the file is truncated or unfinished)

A reader checks: magic, version, header CRC and field bounds, end magic, index CRC, group
count, that chunks tile the file exactly from the end of the prelude to index_offset, then
per chunk on read its length and CRC. Decoding group g needs the chain from
``key_group_at_or_before(g)`` only; the index's frame counts say which group holds a frame.

Header, versions 2 to 5 (:mod:`.header`; the common fields and their bounds are declared once in
``Header``, each kind's config fields in its config dataclass)::

    width u32 (1..16384)     height u32 (1..16384)     num_frames u32 (1..10^7)
    fps_num u32 (>=1)        fps_den u32 (>=1)         group_size u8 (1..64)
    key_interval u16 (>=1)   num_groups u32 (ceil(num_frames / group_size)..num_frames;
                                        == ceil(num_frames / group_size) before version 4)
    kind u8                  0 siren, 1 grid (nirvana.kinds; unknown kinds are refused)
    config_length u16        == the bytes left in the header
    config block             the kind's config, fields in order:
      siren  patch_size u16 (4..256, multiple of 4)  hidden u16 (1..4096)
             hidden_layers u8 (1..8)  channels u16 (4..256, multiple of 4)  w0 f32 (1e-6..1e6)
      grid   levels u8 (1..10)  channels u8 (1..8)  halve_time u8 (0..8)  hidden u8 (1..64)
             layers u8 (0..4)  convs u8 (0..4)  context u8 (0..32: hidden units of the
             context model, 0 none)  context_inputs u8 (0..15: its features, bits 1 spatial,
             2 previous time slot, 4 coarser level, 8 previous group)  motion u8 (0..64,
             multiple of 4: block size of warm groups' motion, 0 none)  chain u8 (0..1:
             with motion, a warm group may move each frame from the frame before)  subpel
             u8 (0..2: displacements in 1/2^subpel pixels)  overlap u8 (0..1: each pixel
             blends the four nearest blocks' predictions)  interpolation u8 (0..1, version 9
             on: how a displacement between whole pixels reads the frame, 0 bilinear, 1 from
             the frame's cubic sub-pixel planes, nirvana.motion.subpel_planes); a 6-byte
             block (written before the context model) reads as context 0, motion 0, an
             8-byte block (before motion) as motion 0, a 9-byte block (before the chain) as
             chain 0, 10- and 11-byte blocks as subpel 0, overlap 0, and 12-byte blocks
             (versions 6 to 8) as interpolation 0

Header, version 1 (38 bytes; siren only, read but no longer written)::

    width u32  height u32  num_frames u32  fps_num u32  fps_den u32  group_size u8 (1..16)
    patch_size u16  key_interval u16  hidden u16  hidden_layers u8  channels u16  w0 f32
    num_groups u32

Group payload, versions 3 to 9 (:mod:`.group`), for every kind; T = number of tensors in the
kind's file order (``nirvana.kinds``: for ``siren`` the stem, conv and bias weights; for
``grid`` the latent levels from the finest, then the synthesis weights, the context model's
and, with motion, the motion tensor: int32 ``(G, 2, ceil(H / B), ceil(W / B))``, scale 1,
per frame and B×B block the change of the (dy, dx) displacement (in 1/2^subpel pixels)
from the frame before; zero in key groups without chain; a warm group's frames are rendered
on the previous group's last decoded frame moved by the displacements, clamped to ±64
pixels, see :mod:`nirvana.motion`;
with chain, last, the chain tensor: int32 ``(G,)``, scale 1, per frame 1 where the frame (not
the first) is moved from the frame before as decoded instead, anything else meaning 0; in a
key group such a frame adds the change of the synthesis output, see :func:`nirvana.grid.render`)::

    u8     flags       bit 0: key group; other bits 0
    u8     num_frames  frames in this group (== the index entry's frames)
    varint iterations  training iterations spent (stats, < 2^32)
    f32    psnr        encoder's PSNR of this group's reconstruction (stats)
    varint T
    T x  (u8 mode      bits 0-1: the coding mode, as in version 2 below (0 intra, 1 residual,
                       2 carried, 3 context: a grid level's context blob, or from version 6
                       on the motion tensor's motion blob); bit 2: a scale follows; bits 3-7 (version 5
                       on; before, 0): S = min(blob length, 31)
          [f32 scale]  quantization step, weight = latent * scale; without bit 2 the previous
                       group's scale of the same tensor (never in a key group)
          [varint]     version 5 on, where S = 31: blob length - 31 (else the length is S);
                       versions 3 and 4: the blob length, always)
    T x  entropy blob (lengths above; before version 7 they sum to the rest of the payload);
         an empty blob in modes 0-2 codes all zeros (the tensor, or its residual)
    u32 words (version 7 on)  the group's one ANS stream, to the end of the payload: the ANS
         symbols of every blob, which then holds none of its own; a decoder reads them in
         its decode order (below), each blob's in the order its layout lists them

Group payload, versions 1 and 2 (fixed-size head and records; read, no longer written)::

    u8   flags        bit 0: key group; other bits 0
    u8   num_frames   frames in this group (>= 1; == min(group_size, frames left))
    u32  iterations   training iterations spent (stats)
    f32  psnr         encoder's PSNR of this group's reconstruction (stats)
    u16  T
    T x  (u8 mode: 0 intra, 1 residual vs the previous group's latents, 2 residual vs
                  the previous group's latents carried in time (every index along axis 1
                  replaced by the last; tensors of 2+ dimensions; version 2 only), 3 coded
                  by the context model (grid levels of a network with context > 0, key
                  groups too; the blob is a context blob, below);
          f32 scale: quantization step, weight = latent * scale;
          u32 blob length)
    T x  entropy blob (lengths above; they sum to the rest of the payload)

Entropy blob (:mod:`codec.entropy`), coding one tensor's int32 values flattened in C order;
the value count comes from the tensor shape. ``varint`` is unsigned LEB128, ``zz`` a zigzag
varint (``0, -1, 1, -2, ...`` -> ``0, 1, 2, 3, ...``)::

    u8 kind, then
    0 constant      zz value
    1 categorical   zz lo, varint n (2..2^20), n x varint count (< 2^35, not all zero),
                    u32 words: ANS (constriction AnsCoder, Categorical(counts as float64,
                    perfect=False)) of the symbols value - lo, to the end of the blob
    2 laplace       zz lo, varint span (1..2^20-1), zz mean (lo..lo+span), f16 scale (> 0),
                    u32 words: ANS with QuantizedLaplace(lo, lo + span, mean, scale)
    3 raw           zz lo, u8 bits (1..32), ceil(count * bits / 8) bytes: value - lo,
                    least significant bit first, values packed back to back (read; written
                    before version 5)
    4 escaped       zz lo, varint n (2..2^20), n x varint count (not all zero), varint
                    tail length; then the tail: an entropy blob (any kind but 4) of the
                    values outside lo..lo+n-2, in order, one per escape symbol; then u32
                    words: ANS (as in 1) of the symbols value - lo inside the core and n - 1
                    (the escape) outside it (version 4 on)
    5 packed        (version 5 on) the kind byte's bits 3-7 hold bits - 1 (1..32), its
                    bits 0-2 are 5; then as 3 raw without its u8 bits: zz lo, the values

``u32 words`` are an ANS coder's words, little-endian; from version 5 on the zero bytes that
end the last word (the coder state's top bytes) are left out, and a reader completes the last
word with zeros (whole words, as before version 5, read the same). From version 7 on a blob
holds no words: its symbols are read from the group's stream where its layout puts its
words, and an escaped blob's tail length counts the tail blob's bytes without words (the
tail's symbols follow the core's in the stream). One stream per group instead of one per
blob saves each blob's final coder state, about 3 bytes (carphone: 2.5 % of the file at
quality 4, 0.5 % at quality 6).

Context blob (mode 3; :mod:`codec.context_coder`, model in :mod:`nirvana.context`): the level's
values in passes (per time slot, three lattice phases), each value coded against
``floor(mu)`` with one of 4 x 37 fixed integer tables chosen by the context model evaluated
in fixed point from already decoded values::

    varint escapes (<= the level's value count), varint length, entropy blob (above) of the
    escaped residuals' excess magnitudes, u32 words: ANS of the table symbols

From version 7 on a level's tables adapt: each starts at its fixed frequencies, and after
every pass every symbol that the pass coded with it adds 256 to its count
(``codec.context_coder.ADAPT_WEIGHT``). A warm group's levels go on from the counts that the
previous group's same level left (a level that was not context-coded there passes them on
unchanged); a key group's start afresh.

From version 8 on each of those tables is four, which adapt apart: a value is coded with
the one of its *activity bucket* (``codec.context_coder.activity``), from ``m = min(|value -
floor(mu)|, 3)`` of values decoded before it. Its neighbours are, in phase 0, the same cell
and its four side neighbours in the slot before (none in a level's first slot); in phase 1
its four diagonal and in phase 2 its four side neighbours in the same slot; a neighbour
outside the level counts 0. With ``s`` the sum of their ``m``, the bucket is 0 if ``s = 0``,
1 if ``s <= 2``, 2 otherwise, and 3 in a level's first pass (the first slot's phase 0). A
level of fewer than 4096 cells per slot (``ACTIVITY_MIN_CELLS``) puts every value in bucket 0.
The key of a value's counts is ``table * 4 + bucket``.

The context model's weights are tensors of the group like the synthesis weights (file order:
w1, b1, w2, b2, per-level offsets), coded by the blobs above. A payload decodes its
non-context tensors first (the motion tensor among them, in file order), then its
context-coded levels from the coarsest: the decode order of the shared stream.

Motion blob (mode 3 on the motion tensor, version 6 on; :mod:`codec.motion_coder`): per
frame, axis and checkerboard phase, each value's zero flag, then for the nonzero ones their
signs and magnitudes, under contexts read from values decoded before, with integer counts
that start at 1 plus, in a warm group, half of the previous group's motion counts, and grow
by every pass (nothing of the model is stored)::

    varint escapes (<= the tensor's value count), varint length, entropy blob (above) of the
    escaped magnitudes' excess (|v| - 8), u32 words: ANS of flags, signs and magnitudes

Example:
    >>> from codec.bitstream import Header, NirvReader, NirvWriter, pack_group, unpack_group
"""

from codec.bitstream.container import NirvReader, NirvWriter
from codec.bitstream.group import GroupPayload, pack_group, unpack_group
from codec.bitstream.header import Header

__all__ = ["Header", "GroupPayload", "pack_group", "unpack_group", "NirvWriter", "NirvReader"]
