"""The trainable ``grid`` network of one group: the tensors of :func:`nirvana.grid.tensor_shapes`
as :class:`~nirvana.quant.QuantizedTensors` with one learned step per grid level and per
synthesis tensor. Grids start at zero (Cool-chic and C3 do the same), the per-pixel layers
as PyTorch's default, the residual convolutions near zero (so they start as the identity).

Example:
    >>> from nirvana.grid import GridConfig
    >>> net = GridNet(GridConfig(levels=2, hidden=4, layers=1, convs=1, context=0), 2, 6, 8,
    ...               torch.Generator().manual_seed(0))
    >>> frames, symbols = net.predict()
    >>> frames.shape, symbols.shape
    (torch.Size([2, 3, 6, 8]), torch.Size([171]))
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from .context import FEATURES, ContextWeights, dense_features, float_laplace
from .grid import (GridConfig, chained_frame, context_start, moved, reference_planes, synthesize, tensor_shapes,
                   upsample_levels)
from .motion import Gather, cubic_weights, displacements, estimate, shift_gather, to_reference
from .quant import QuantizedModel, QuantizedTensors
from .rate import laplace_mass_bits, tensor_bits

GRID_STEP = 1 / 16  # initial quantization step of grid values (learned per level)
CONV_INIT = 0.01  # bound of the residual convolutions' initial weights
CONTEXT_STEP = 1 / 256  # initial quantization step of the context model's later tensors
KEY_CHAIN_GAIN = 0.5  # a key group chains a frame whose motion error is below this share of its error on gray
# frames up to this size train their chained moves as sparse matrices (SparseMove) on a CPU;
# larger ones keep the gather: a 1080p group's seven pairs of matrices peaked at 5.4 GB, its
# gathers at 3.4 GB
SPARSE_MOVE_PIXELS = 1280 * 720
# cells of a level whose context rate training evaluates at a time (whole rows): big
# temporaries are fresh memory on every iteration, which the CPU must page in
CONTEXT_BAND = 1 << 18


class GridNet(QuantizedModel):
    """One group's latent grids and synthesis network, quantized, in file order."""

    def __init__(self, cfg: GridConfig, group_size: int, height: int, width: int,
                 generator: torch.Generator, init_bits: int = 8):
        super().__init__()
        self.cfg, self.group_size, self.height, self.width = cfg, group_size, height, width
        inits, steps = [], []
        shapes = tensor_shapes(cfg, group_size, height, width)
        # the motion and chain tensors (last) are searched, not trained: they stay out of the
        # quantized tensors
        self.chain = torch.zeros(shapes.pop(), dtype=torch.int32) if cfg.motion and cfg.chain else None
        self.motion = torch.zeros(shapes.pop(), dtype=torch.int32) if cfg.motion else None
        self.base: torch.Tensor | float = 0.5  # what the frames are rendered on
        self.reference: torch.Tensor | None = None  # with motion: the previous group's last decoded frame
        self.moves: list[Gather | SparseMove | None] | None = None  # chained group: each chained frame's move
        self.context_at = context_start(cfg)
        bound = 0.0  # the last weight's bound, which its bias shares
        for i, shape in enumerate(shapes):
            if i < cfg.levels:
                inits.append(torch.zeros(shape))
                steps.append(GRID_STEP)
                continue
            if self.context_at is not None and i >= self.context_at:
                # the context model starts at a constant Laplace(0, 1): only its first layer
                # is random, so that its second layer gets gradients
                first = i == self.context_at
                bound = 1.0 / math.sqrt(FEATURES) if first else CONTEXT_STEP * 2 ** (init_bits - 1)
                inits.append((torch.rand(shape, generator=generator) * 2 - 1) * bound if first
                             else torch.zeros(shape))
                steps.append(bound / 2 ** (init_bits - 1))
                continue
            if len(shape) == 4:
                bound = CONV_INIT
            elif len(shape) == 2:
                bound = 1.0 / math.sqrt(shape[1])
            # a bias (1-D) keeps the bound of the weight before it
            inits.append((torch.rand(shape, generator=generator) * 2 - 1) * bound)
            steps.append(bound / 2 ** (init_bits - 1))
        self.quant = QuantizedTensors(inits, steps)
        self.mask = None  # every predicted pixel is a real pixel

    def prepare(self, frames: torch.Tensor) -> torch.Tensor:
        """The training target in :meth:`predict`'s layout: frames as they are."""
        return frames

    def predict(self, noise: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All G frames ``(G, 3, H, W)`` from the quantized tensors (or their noisy proxy),
        and the flat symbols behind them (for the rate term)."""
        symbols, tensors = self.quant(noise)
        levels = self.cfg.levels
        features = upsample_levels(tensors[:levels], self.group_size, self.height, self.width)
        if self.moves is None:  # mid-gray, or the motion prediction from the reference
            return synthesize(features, tensors[levels:], self.cfg, self.base), symbols
        # chained frames (nirvana.grid.render) are moved from the frame before rounded as the
        # decoder rounds it; the gradient passes the rounding straight through, so a frame
        # also learns what it gives the next. The frames come apart by unbind: the backward
        # of indexing each one would fill a zero tensor of the whole group per frame
        residuals = synthesize(features, tensors[levels:], self.cfg, 0.0).unbind(0)
        frames: list[torch.Tensor] = []
        for t, move in enumerate(self.moves):
            if t > 0 and move is not None:
                before = frames[-1] + (to_reference(frames[-1].detach()) - frames[-1]).detach()
                frames.append(chained_frame(move.apply(before), residuals[t], residuals[t - 1],
                                            warm=self.reference is not None))
            else:
                frames.append(residuals[t] + (self.base if isinstance(self.base, float) else self.base[t]))
        return torch.stack(frames), symbols

    def set_key_motion(self, frames: torch.Tensor, bit_cost: float) -> None:
        """With ``chain``, chain the key group's frames ``(n, 3, H, W)`` after the first: each
        one whose motion search from the frame before (source frames) costs below
        :data:`KEY_CHAIN_GAIN` times its error on mid-gray (a scene cut does not)."""
        n = frames.shape[0]
        if self.chain is None or n < 2:
            return
        motion, costs = estimate(frames[0].cpu(), frames[1:].cpu(), self.cfg.motion, bit_cost, chain=True,
                                 subpel=self.cfg.subpel, interpolation=self.cfg.interpolation)
        gray = ((frames[1:] - 0.5) ** 2).sum((1, 2, 3)).tolist()
        self.motion.zero_()
        self.motion[1:n] = motion
        self.chain.zero_()
        self.chain[1:n] = torch.tensor([int(c < KEY_CHAIN_GAIN * g) for c, g in zip(costs, gray)])
        self.moves = self._gathers(displacements(self.motion, self.cfg.subpel).to(frames.device), self.chain)

    def set_motion(self, reference: torch.Tensor, frames: torch.Tensor, bit_cost: float,
                   source: torch.Tensor, chain_gain: float) -> None:
        """Render the next (warm) group on the motion prediction of ``frames`` ``(n, 3, H, W)``
        from ``reference`` (the previous group's last decoded frame) or, with ``chain``, of
        each frame from the frame before; its grids restart from zero, as they code what the
        prediction misses. ``bit_cost``: what one bit of motion is worth in squared error
        (:func:`nirvana.motion.estimate`). The group is chained where the chained search
        for its frames after the first (from the source frames before, as the decoded ones do
        not exist yet) costs below ``chain_gain`` times their search from ``source``, the
        previous group's last source frame: source against source, as neither carries coding
        noise. Key groups are fresh
        models, rendered on mid-gray (and chained: :meth:`set_key_motion`)."""
        n = frames.shape[0]
        motion = None
        block, subpel, interpolation = self.cfg.motion, self.cfg.subpel, self.cfg.interpolation
        if self.chain is not None and n > 1:
            chained, chained_costs = estimate(reference.cpu(), frames.cpu(), block, bit_cost, True, subpel,
                                              interpolation)
            _, source_costs = estimate(source.cpu(), frames.cpu(), block, bit_cost, subpel=subpel,
                                       interpolation=interpolation)
            # frame 0 moves from the reference either way: the frames after it decide, on their
            # errors and motion bits less the bit a block pays per axis even for no change
            floor = 2 * self.motion[0, 0].numel() * (n - 1) * bit_cost
            if sum(chained_costs[1:]) - floor < chain_gain * (sum(source_costs[1:]) - floor):
                motion = chained
        is_chained = motion is not None
        if motion is None:  # searched only where it is used
            motion, _ = estimate(reference.cpu(), frames.cpu(), block, bit_cost, subpel=subpel,
                                 interpolation=interpolation)
        self.motion.zero_()
        self.motion[:n] = motion
        moves = displacements(self.motion, subpel).to(reference.device)
        self.reference = reference
        # a chained group renders only its first frame on the fixed prediction
        planes = reference_planes(reference, self.cfg)
        self.base = torch.stack([moved(reference, move, self.cfg, planes)
                                 for move in (moves[:1] if is_chained else moves)])
        if self.chain is not None:
            self.chain.fill_(1 if is_chained else 0)
            self.chain[0] = 0
        self.moves = self._gathers(moves, self.chain) if is_chained else None
        with torch.no_grad():
            self.quant.weight[:sum(self.sizes[:self.cfg.levels])] = 0

    def _gathers(self, moves: torch.Tensor, chain: torch.Tensor,
                 sparse: bool | None = None) -> list[Gather | SparseMove | None]:
        """The move of each frame that ``chain`` marks (:func:`nirvana.grid.moved`), made
        once for every iteration of the training: a :class:`Gather`, or with ``sparse`` a
        :class:`SparseMove` (None: on a CPU up to :data:`SPARSE_MOVE_PIXELS`, as a GPU's
        gather and scatter are fast already); None for the others."""
        cfg, size = self.cfg, (self.height, self.width)
        if sparse is None:
            sparse = moves.device.type == "cpu" and self.height * self.width <= SPARSE_MOVE_PIXELS
        # made one at a time, so that each gather is made into its matrices before the next
        gathers = (shift_gather(move, cfg.motion, cfg.subpel, cfg.overlap, size, cfg.interpolation) if chained else None
                   for move, chained in zip(moves, (chain == 1).tolist()))
        if not sparse:
            return list(gathers)
        return [None if gather is None else SparseMove(gather, size) for gather in gathers]

    def integer_latents(self) -> list[np.ndarray]:
        extra = [t.numpy().copy() for t in (self.motion, self.chain) if t is not None]
        return super().integer_latents() + extra

    def steps(self) -> list[float]:
        return super().steps() + [1.0 for t in (self.motion, self.chain) if t is not None]

    def carry(self, flat: torch.Tensor) -> torch.Tensor:
        """A flat vector (weights or latents in file order) with every grid level's time
        slots replaced by its last one: the previous group's state carried to the next group
        (the decoder's ``CARRIED`` prediction, :mod:`codec.bitstream.group`)."""
        parts = list(flat.split(self.sizes))
        for i in range(self.cfg.levels):
            level = parts[i].view(self.quant.shapes[i])
            parts[i] = level[:, -1:].expand_as(level).reshape(-1)
        return torch.cat(parts)


    def coded_bits(self, symbols: torch.Tensor, references: list[torch.Tensor]) -> torch.Tensor:
        """Estimated bits of the group: per tensor the cheapest coding, where a grid level may
        also be coded by the context model (:mod:`nirvana.context`)."""
        bits = tensor_bits(symbols, self.sizes, references)
        if self.context_at is None:
            return bits.sum()
        levels = self.cfg.levels
        parts = self.quant.split(symbols)
        steps = torch.exp(self.quant.log_step[self.context_at:])
        weights = ContextWeights(*(p * s for p, s in zip(parts[self.context_at:], steps)))
        previous = self.quant.split(references[0]) if references else [None] * levels
        context = []
        for level in range(levels):
            values = parts[level]
            coarser = parts[level + 1] if level + 1 < levels else None
            C, T, H, W = values.shape
            rows = max(1, CONTEXT_BAND // (C * T * W))
            level_bits = 0
            for top in range(0, H, rows):
                bottom = min(top + rows, H)
                f = dense_features(values, coarser, previous[level], self.cfg.context_inputs, top, bottom)
                mean, log2_scale = float_laplace(f, weights, level)
                cells = values[:, :, top:bottom].reshape(-1)
                level_bits = level_bits + laplace_mass_bits(cells, mean, log2_scale).sum()
            context.append(level_bits)
        return torch.minimum(bits[:levels], torch.stack(context)).sum() + bits[levels:].sum()


class SparseMove:
    """A :class:`~nirvana.motion.Gather` as a sparse matrix and its transpose, for training
    on a CPU: the move of a chained frame runs forward and backward on every iteration, and
    as two sparse products it runs 3–6× faster there than the gather, its weighted sum and
    their backward (a scatter): a chained 640×272 or 1080p group's iteration runs 1.3×
    faster (:mod:`benchmarks.chain_speed`). The fit uses it up to :data:`SPARSE_MOVE_PIXELS`.
    Each pixel's taps are summed in the gather's order, and each input pixel's gradient in
    the scatter's, so the fit is the same as with the gather (a bikes encode gave the same
    bytes) up to the order of a sum that torch may vectorise; the reconstruction that is
    reported and coded comes from the decoder's own render anyway (:mod:`nirvana.fit`). A
    gather of cubic sub-pixel planes is folded into taps of the image itself (each plane
    read becomes the 4 × 4 pixels that make it up), so training computes no planes; its
    sums then differ from the decoder's by rounding.

    >>> from nirvana.motion import shift_gather
    >>> gather = shift_gather(torch.ones(2, 1, 1, dtype=torch.int64), 4, 1, 0, (4, 4))
    >>> image = torch.arange(16.0).view(1, 4, 4)
    >>> torch.equal(SparseMove(gather, (4, 4)).apply(image), gather.apply(image))
    True
    """

    def __init__(self, gather: Gather, size: tuple[int, int]):
        pixels, inputs = math.prod(gather.shape), math.prod(size)
        self.shape = gather.shape
        # each output pixel's taps (int32 indices: a 1080p frame's 16 taps per pixel are 33 M
        # entries per matrix) and their weights, (pixels, taps); zero weights (a bilinear read
        # at a whole pixel, a cubic one of plane 0) are left out: the sums are the same
        cols, weights = _image_taps(gather, size)
        taps = cols.shape[1]
        kept = (weights != 0).view(-1).nonzero().squeeze(1)  # (pixel, tap) positions, in C order
        cols, weights = cols.view(-1)[kept], weights.view(-1)[kept]
        rows, tap = kept.div(taps, rounding_mode="floor"), kept.remainder(taps)
        with warnings.catch_warnings():  # torch calls its CSR support beta (it has been since 1.10)
            warnings.simplefilter("ignore", UserWarning)
            # row p of the matrix: output pixel p's taps, in tap order
            self.matrix = torch.sparse_csr_tensor(_row_starts(rows, pixels), cols, weights, (pixels, inputs),
                                                  check_invariants=False)
            # row i of the transpose: the taps that read input pixel i in the order of the
            # gather's scatter (tap by tap, each over all pixels): sorted by (i, tap, pixel)
            order = torch.sort((cols.long() * taps + tap) * pixels + rows)[1]
            self.transposed = torch.sparse_csr_tensor(_row_starts(cols, inputs), rows[order].to(torch.int32),
                                                      weights[order], (inputs, pixels), check_invariants=False)

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` ``(C, h, w)`` moved → ``(C, *shape)``, differentiable in ``image``."""
        moved = _SparseProduct.apply(image.flatten(1), self.matrix, self.transposed)
        return moved.view(image.shape[0], *self.shape)


class _SparseProduct(torch.autograd.Function):
    """``x @ A.T`` for ``x`` ``(C, n)`` and a sparse ``A``, given ``A.T`` for the backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, matrix: torch.Tensor, transposed: torch.Tensor) -> torch.Tensor:
        ctx.transposed = transposed
        return (matrix @ x.t()).t()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return (ctx.transposed @ grad.t()).t(), None, None


def _image_taps(gather: Gather, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The gather's reads as taps of the image ``(C, *size)``: per output pixel, its input
    pixels (int32) and weights in the gather's order, both ``(pixels, taps)``. A read of a
    cubic sub-pixel plane becomes the 4 × 4 image pixels that make it up
    (:func:`nirvana.motion.cubic_weights`, each row and column clamped to the image), so
    that training computes no planes."""
    pixels = math.prod(gather.shape)
    device = gather.index.device
    taps = gather.index.numel() // pixels
    index = gather.index.to(torch.int32).view(taps, pixels).t().contiguous()
    weights = (torch.ones(pixels, taps, device=device) if gather.weights is None
               else gather.weights.view(taps, pixels).t().contiguous())
    if not gather.planes:
        return index, weights
    height, width = size
    unit = 1 << gather.planes
    plane, at = index.div(height * width, rounding_mode="floor"), index.remainder(height * width)
    cubic = torch.tensor(cubic_weights(gather.planes), device=device)  # (fraction, 4)
    steps = torch.arange(-1, 3, dtype=torch.int32, device=device)
    ys = (at.div(width, rounding_mode="floor")[..., None] + steps).clamp(0, height - 1)
    xs = (at.remainder(width)[..., None] + steps).clamp(0, width - 1)
    weights = (weights[..., None, None] * cubic[plane.div(unit, rounding_mode="floor")][..., :, None]
               * cubic[plane.remainder(unit)][..., None, :])
    return (ys[..., :, None] * width + xs[..., None, :]).flatten(1), weights.flatten(1)


def _row_starts(rows: torch.Tensor, count: int) -> torch.Tensor:
    """CSR row starts (int32) of entries whose row indices are ``rows``."""
    starts = torch.zeros(count + 1, dtype=torch.int32, device=rows.device)
    torch.cumsum(torch.bincount(rows, minlength=count), 0, out=starts[1:])
    return starts
