"""The encoder's options, checked before any frame is read or fitted: one place for the CLI
and :func:`codec.encode`.

A mistake in an option must cost seconds, not the hours of fitting after which the file is
written. Every check raises :class:`~codec.errors.InputError` with one line naming the
option, what is wrong and what to do. Ranges come from where each value ends up, never
restated here: the header's field table (:class:`codec.bitstream.Header`: group size, key
interval, frame size, frame rate), the network kind's config table (``nirvana.kinds``: patch
size, widths, levels), the group payload's u32 iteration count, and the README (quality
0..10). Nothing is clamped.

* :func:`check_options`: the values of the options, and the output paths;
* :func:`check_distinct`: no two of the input and outputs name the same file (by resolved
  path or by inode), so that no output can overwrite the input or another output;
* :func:`check_resume`: ``--resume`` and the options it cannot go with;
* :func:`check_plan`: once the input is opened, the header the encode would write (frame
  size, frame rate, frame count, network) and the decoder's limits (:mod:`codec.limits`).

Example:
    >>> check_options(model="grid", preset="medium", quality=11.0)
    Traceback (most recent call last):
    codec.errors.InputError: --quality 11.0: must be between 0 and 10 (0 smallest file, 10 best quality)
"""

from __future__ import annotations

import math
import os
from dataclasses import fields
from pathlib import Path

from codec import limits
from codec.bitstream import Header
from codec.errors import InputError
from codec.video.reader import as_fps
from codec.video.writer import check_output_folder
from nirvana.config import DISTORTIONS, PRESETS
from nirvana.kinds import KINDS
from nirvana.motion import INTERPOLATIONS

PathLike = str | os.PathLike[str]

U32_MAX = 2**32 - 1  # iterations are stored as a u32 in every group
QUALITY_RANGE = (0.0, 10.0)  # README: --quality 0..10


def _bounds(table: type, name: str) -> tuple[float, float, int]:
    """``(lo, hi, multiple_of)`` of field ``name`` of a :func:`nirvana.config.spec` table."""
    meta = next(f.metadata for f in fields(table) if f.name == name)
    return meta["lo"], meta["hi"], meta["multiple_of"]


def _show(x: float) -> str:
    """A bound as the user would write it: ``64``, ``4294967295``, ``0.5``."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check_int(option: str, value: int | None, lo: float, hi: float, multiple_of: int = 1) -> None:
    """Refuse a whole number ``value`` of ``option`` outside ``lo..hi`` or off its multiple."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{option} {value!r}: must be a whole number")
    if not lo <= value <= hi:
        raise InputError(f"{option} {value}: must be between {_show(lo)} and {_show(hi)}")
    if value % multiple_of:
        raise InputError(f"{option} {value}: must be a multiple of {multiple_of}")


def _check_real(option: str, value: float | None, lo: float, hi: float, what: str = "") -> None:
    """Refuse a finite-number ``value`` of ``option`` outside ``lo..hi`` (NaN and inf included)."""
    if value is not None and not (math.isfinite(value) and lo <= value <= hi):
        raise InputError(f"{option} {value}: must be between {_show(lo)} and {_show(hi)}{what}")


def _check_network(model: str, given: dict[str, int | None], group_size: int | None) -> None:
    """Network options against ``model``'s config table; the group size against the header's
    and, where the kind bounds it too (siren), the kind's."""
    table = KINDS[model].config_type
    own = {f.name for f in fields(table)}
    for name, value in given.items():
        if value is None:
            continue
        option = "--" + name.replace("_", "-")
        if name not in own:
            users = [k for k, kind in KINDS.items() if name in {f.name for f in fields(kind.config_type)}]
            raise InputError(f"{option} applies to --model {' or '.join(users)} only; drop it or change --model")
        _check_int(option, value, *_bounds(table, name))
    _check_int("--group-size", group_size, *_bounds(Header, "group_size"))
    if "group_size" in own:
        _check_int("--group-size", group_size, *_bounds(table, "group_size"))


def _check_frames(start: int, stop: int | None, size: tuple[int, int] | None) -> None:
    """``--frames START:STOP`` and ``--size WxH``."""
    if start < 0 or (stop is not None and stop <= start):
        raise InputError(f"--frames {start}:{'' if stop is None else stop}: "
                         "need 0 <= START < STOP (STOP may be left out)")
    if size is not None:
        for side, field_name in zip(size, ("width", "height")):
            lo, hi, _ = _bounds(Header, field_name)
            if not lo <= side <= hi:
                raise InputError(f"--size {size[0]}x{size[1]}: {field_name} must be between {lo} and {hi}")


def _check_fps(fps: float | None) -> None:
    """``--fps``: positive, finite, and storable as the header's fps_num/fps_den."""
    if fps is None:
        return
    lo, hi, _ = _bounds(Header, "fps_num")
    rate = as_fps(fps) if math.isfinite(fps) and fps > 0 else None
    if rate is None or not (lo <= rate.numerator <= hi and lo <= rate.denominator <= hi):
        raise InputError(f"--fps {fps}: must be a frame rate between 1/1001 and {_show(hi)}, "
                         "e.g. 25 or 29.97")


def interpolation_code(name: str | None) -> int | None:
    """``--interpolation``'s value as GridConfig stores it (None stays None)."""
    return None if name is None else INTERPOLATIONS.index(name)


def check_options(
    *,
    model: str,
    preset: str,
    quality: float | None = None,
    distortion: str | None = None,
    target_psnr: float | None = None,
    group_size: int | None = None,
    patch_size: int | None = None,
    hidden: int | None = None,
    channels: int | None = None,
    levels: int | None = None,
    halve_time: int | None = None,
    context: int | None = None,
    motion: int | None = None,
    chain: bool | None = None,
    subpel: int | None = None,
    overlap: bool | None = None,
    interpolation: str | None = None,
    key_interval: int | None = None,
    iterations: int | None = None,
    key_iterations: int | None = None,
    start: int = 0,
    stop: int | None = None,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    seed: int = 0,
) -> None:
    """Refuse any option value that the encoder, the header or the decoder cannot take.

    (``--device``, ``--workers`` and ``--threads`` are checked by
    :func:`codec.schedule.placement`, the first thing an encode does.)
    """
    if model not in KINDS:
        raise InputError(f"--model {model!r}: choose one of {', '.join(KINDS)}")
    if preset not in PRESETS[model]:
        raise InputError(f"--preset {preset!r}: choose one of {', '.join(PRESETS[model])}")
    _check_real("--quality", quality, *QUALITY_RANGE, " (0 smallest file, 10 best quality)")
    if distortion is not None and distortion not in DISTORTIONS:
        raise InputError(f"--distortion {distortion!r}: choose one of {', '.join(DISTORTIONS)}")
    _check_real("--target-psnr", target_psnr, 0.0, 100.0, " dB")
    if interpolation is not None and interpolation not in INTERPOLATIONS:
        raise InputError(f"--interpolation {interpolation!r}: choose one of {', '.join(INTERPOLATIONS)}")
    _check_network(model, {"patch_size": patch_size, "hidden": hidden, "channels": channels,
                           "levels": levels, "halve_time": halve_time, "context": context, "motion": motion,
                           "chain": None if chain is None else int(chain), "subpel": subpel,
                           "overlap": None if overlap is None else int(overlap),
                           "interpolation": interpolation_code(interpolation)}, group_size)
    _check_int("--key-interval", key_interval, *_bounds(Header, "key_interval"))
    _check_int("--iterations", iterations, 1, U32_MAX)
    _check_int("--key-iterations", key_iterations, 1, U32_MAX)
    _check_int("--seed", seed, 0, U32_MAX)
    _check_frames(start, stop, size)
    _check_fps(fps)


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """A path's resolved name and, if it exists, its (device, inode)."""
    try:
        st = path.stat()
    except OSError:
        return str(path.resolve()), None
    return str(path.resolve()), (st.st_dev, st.st_ino)


def check_distinct(paths: dict[str, PathLike | None]) -> None:
    """Refuse two of ``paths`` (named by role, e.g. ``{"the input": ..., "--recon": ...}``;
    None = not used) that are the same file, by resolved path or by inode (hard links).

    Example:
        >>> check_distinct({"the input": "clip.mkv", "the output": "./clip.mkv"})
        Traceback (most recent call last):
        codec.errors.InputError: ./clip.mkv: the output is the same file as the input (clip.mkv); choose another name
    """
    seen: list[tuple[str, PathLike, tuple]] = []
    for role, path in paths.items():
        if path is None:
            continue
        name, inode = _identity(Path(path))
        for other_role, other_path, (other_name, other_inode) in seen:
            if name == other_name or (inode is not None and inode == other_inode):
                raise InputError(f"{path}: {role} is the same file as {other_role} ({other_path}); "
                                 "choose another name")
        seen.append((role, path, (name, inode)))


def check_outputs(input: PathLike, output: PathLike, stats: PathLike | None,
                  reconstruction: PathLike | None) -> None:
    """The encoder's outputs: distinct from the input and each other, in existing folders,
    and not replacing anything but a plain file (``output`` and ``stats``)."""
    check_distinct({"the input": input, "the output": output, "--stats": stats, "--recon": reconstruction})
    for path, example in ((output, "clip.nirv"), (stats, "stats.json"), (reconstruction, None)):
        if path is None:
            continue
        path = Path(path)
        check_output_folder(path)
        if example and path.exists() and not path.is_file():
            kind = "a folder" if path.is_dir() else "not a regular file"
            raise InputError(f"{path}: is {kind}; give a file name such as {example}")


def check_resume(resume: bool, reconstruction: PathLike | None, ranks: int) -> None:
    """``--resume`` (:mod:`codec.resume`): a flag, and not with ``--recon`` (reconstructions are
    not kept with the finished segments) or under torchrun (``ranks`` > 1: its ranks hand
    their segments over only at the end, so none is ever kept)."""
    if not isinstance(resume, bool):
        raise InputError(f"resume={resume!r}: must be True or False")
    if resume and reconstruction is not None:
        raise InputError("--resume cannot be combined with --recon: reconstructions are not kept with "
                         "the finished segments; drop --recon and decode the .nirv afterwards")
    if resume and ranks > 1:
        raise InputError("--resume does not work under torchrun, whose ranks keep no finished segments; "
                         "encode with --workers or a --device list instead")


def check_plan(input: PathLike, header: Header) -> None:
    """Refuse an encode whose file (``header``, from the opened input and the options) could
    not be stored or would be over the decoder's limits, before any fitting."""
    problem = header.problem()
    if problem:
        raise InputError(f"{input}: cannot be stored in a .nirv: {problem}; crop, cut or "
                         "re-time the input or change the options")
    problem = limits.problem(header)
    if problem:
        raise InputError(f"{input}: the .nirv would be over the decoder's limits: {problem}; "
                         "choose a smaller network or --group-size")
