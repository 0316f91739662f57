"""The ``nirvana`` command: encode, decode, info, eval.

Progress goes to stderr (tqdm), results to stdout. A user mistake (missing file, damaged
.nirv, bad option) or a refusal by the system (no permission, full disk, not a folder)
prints one ``error:`` line and exits with status 1, never a traceback. Ctrl-C (SIGINT) and
SIGTERM stop a command the same way: temporary files are removed, nothing is left at the
output, and the exit status is 130 or 143. Option values are checked by the commands'
modules (:mod:`codec.options` for encode), here only their syntax.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import signal
import sys
import threading
from collections.abc import Iterator
from functools import wraps

import click

from codec.errors import CodecError, InputError


def _size(text: str | None) -> tuple[int, int] | None:
    """``WIDTHxHEIGHT`` → ``(width, height)``; the values are checked where they are used."""
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1920x1080") from None
    return w, h


def _range(text: str | None) -> tuple[int, int | None]:
    """``START:STOP`` (either side may be empty) → ``(start, stop or None)``; the values are
    checked where they are used."""
    if text is None:
        return 0, None
    try:
        a, b = text.split(":")
        start = int(a) if a.strip() else 0
        stop = int(b) if b.strip() else None
    except ValueError:
        raise InputError(f"--frames {text!r}: expected START:STOP, e.g. 0:30") from None
    return start, stop


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every writer removes its temporary files."""


def _raise_terminated(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
    raise _Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`_Terminated` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_OS_ADVICE = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EROFS: "write elsewhere",
    errno.EACCES: "check the permissions or write elsewhere",
    errno.EPERM: "check the permissions or write elsewhere",
    errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
    errno.EISDIR: "it is a folder; give a file name",
    errno.ENOENT: "check the path",
}


def _os_error_line(e: OSError) -> str:
    """One line for an OSError: the file, the system's reason, what to do."""
    advice = _OS_ADVICE.get(e.errno, "check the path, its permissions and the free space")
    return f"{e.filename or 'a file'}: {e.strerror or e}; {advice}"


def _user_errors(fn):
    """Turn CodecError and OSError into one line on stderr and exit status 1; SIGINT and
    SIGTERM into a short note and status 130 or 143, after the writers have cleaned up."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with _sigterm_as_interrupt():
                return fn(*args, **kwargs)
        except CodecError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except OSError as e:
            click.echo(f"error: {_os_error_line(e)}", err=True)
            sys.exit(1)
        except KeyboardInterrupt as e:
            click.echo("interrupted; no output written", err=True)
            sys.exit(128 + (signal.SIGTERM if isinstance(e, _Terminated) else signal.SIGINT))

    return wrapper


def _json(data) -> str:
    """Indented JSON of ``data``, NaN and infinities written as null (JSON has neither)."""

    def finite(x):
        if isinstance(x, float):
            return x if math.isfinite(x) else None
        if isinstance(x, dict):
            return {k: finite(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [finite(v) for v in x]
        return x

    return json.dumps(finite(data), indent=1, allow_nan=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nirvana-codec")
def main() -> None:
    """NIRVANA: video compressed as a chain of small neural networks."""


@main.command()
@click.argument("input", type=click.Path(path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(path_type=str), help="Output .nirv file.")
@click.option("--model", type=click.Choice(["grid", "siren"]), default="grid", show_default=True,
              help="Group network: latent grids + synthesis (grid) or the paper's SIREN (siren).")
@click.option("--preset", type=click.Choice(["fast", "medium", "slow"]), default="medium", show_default=True,
              help="Encode effort: more iterations per group give better quality per bit.")
@click.option("--quality", type=float, default=None,
              help="0 (smallest file) .. 10 (best quality); sets the rate weight lambda. Default 5.")
@click.option("--distortion", default=None,
              help="What fitting trades against bits: psnr (each frame's PSNR, averaged: bits go where "
                   "they buy the most dB) or mse (the squared error of a whole group). Default: psnr for grid.")
@click.option("--target-psnr", type=float, default=None, help="Stop fitting a group once it reaches this RGB PSNR (dB).")
@click.option("--group-size", type=int, default=None, help="Frames per network (default: by model and resolution).")
@click.option("--patch-size", type=int, default=None, help="siren: patch side in pixels, multiple of 4 (default: by resolution).")
@click.option("--hidden", type=int, default=None, help="siren: stem width; grid: synthesis width (default: by resolution).")
@click.option("--channels", type=int, default=None, help="siren: feature channels (multiple of 4); grid: values per grid cell.")
@click.option("--levels", type=int, default=None, help="grid: latent levels, each halving the size (default: by resolution).")
@click.option("--halve-time", type=int, default=None,
              help="grid: time slots of the latent levels; the finest has one per 2^(N-1) frames and each "
                   "coarser level half as many, 0 = one per frame at every level (default: 1 from 320x180, else 2).")
@click.option("--context", type=int, default=None,
              help="grid: hidden units of the context entropy model of the latents, 0 = none (default 8).")
@click.option("--motion", type=int, default=None,
              help="grid: block size of the motion of warm groups, multiple of 4, 0 = none (default: by resolution).")
@click.option("--chain/--no-chain", default=None,
              help="grid, with motion: let a warm group predict each frame from the frame before where that "
                   "is clearly cheaper (default: on).")
@click.option("--subpel", type=int, default=None,
              help="grid, with motion: motion in 1/2^N pixels, 0 = whole pixels, 1 = half, 2 = quarter "
                   "(default: 2 from --quality 6, 1 below).")
@click.option("--overlap/--no-overlap", default=None,
              help="grid, with motion: blend the four nearest blocks' predictions per pixel, so that the "
                   "prediction has no block edges (default: on).")
@click.option("--interpolation", default=None,
              help="grid, with motion: how motion between whole pixels reads the frame it moves, bilinear or "
                   "cubic (4 taps per axis: it keeps detail that bilinear reads blur; default cubic).")
@click.option("--key-interval", type=int, default=None, help="A key group every N groups (default 20).")
@click.option("--iterations", type=int, default=None, help="Iteration budget of a warm-started group (overrides the preset).")
@click.option("--key-iterations", type=int, default=None, help="Iteration budget of a key group (overrides the preset).")
@click.option("--frames", "frame_range", default=None, help="Encode only frames START:STOP of the input.")
@click.option("--size", default=None, help="WIDTHxHEIGHT of a raw .yuv input (else parsed from its name).")
@click.option("--fps", type=float, default=None, help="Frame rate of a raw .yuv or PNG-folder input.")
@click.option("--ignore-trailing-bytes", is_flag=True,
              help="Let a raw .yuv end in a partial frame, which is dropped (else it is refused).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, or a list: cuda:0,cuda:1 (one worker each).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes on one device.")
@click.option("--threads", type=int, default=None,
              help="CPU threads per worker (default: cores / workers). Same --threads, same file for any --workers.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--stats", "stats_path", type=click.Path(path_type=str), default=None, help="Write per-group stats as JSON here.")
@click.option("--recon", type=click.Path(path_type=str), default=None,
              help="Also write the encoder's reconstruction (what the decoder will output) to this video.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted encode (same input and options) from the finished segments kept beside OUT.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@_user_errors
def encode(input, output, model, preset, quality, distortion, target_psnr, group_size, patch_size, hidden, channels,
           levels, halve_time, context, motion, chain, subpel, overlap, interpolation, key_interval, iterations, key_iterations, frame_range, size, fps, ignore_trailing_bytes, device,
           workers, threads, seed, stats_path, recon, resume, quiet):
    """Encode INPUT (a video file, raw .yuv, or PNG folder) into a .nirv file."""
    from codec.encoder import encode as run

    start, stop = _range(frame_range)
    try:
        report = run(input, output, model=model, preset=preset, quality=quality, distortion=distortion,
                     target_psnr=target_psnr,
                     group_size=group_size, patch_size=patch_size, hidden=hidden, channels=channels, levels=levels,
                     halve_time=halve_time,
                     context=context, motion=motion, chain=chain, subpel=subpel, overlap=overlap,
                     interpolation=interpolation,
                     key_interval=key_interval, iterations=iterations,
                     key_iterations=key_iterations, start=start, stop=stop, size=_size(size), fps=fps, ignore_trailing_bytes=ignore_trailing_bytes,
                     device=device, workers=workers, threads=threads, seed=seed, stats_path=stats_path,
                     reconstruction=recon, resume=resume, progress=not quiet)
    except KeyboardInterrupt as e:  # its note says which finished segments --resume can use
        for note in getattr(e, "__notes__", ()):
            click.echo(note, err=True)
        raise
    if report is not None:  # None on torchrun ranks other than 0
        click.echo(report.summary())


@main.command()
@click.argument("input", type=click.Path(path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(path_type=str),
              help="Output video: .mp4, .mkv, .mov, .y4m, or a folder (PNG frames).")
@click.option("--frames", "frame_range", default=None, help="Decode only frames START:STOP.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--codec", "video_codec", default=None, help="libx264 (default), libx265, libsvtav1, ffv1, libx264rgb.")
@click.option("--crf", type=int, default=None,
              help="Output quality for lossy codecs, 0..51 (libsvtav1 0..63); lower is better (default 12).")
@click.option("--lossless", is_flag=True, help="Exact RGB output (libx264rgb qp 0, or ffv1 with --codec ffv1 in .mkv).")
@click.option("--batch", type=int, default=None,
              help="Groups rendered at once (default: by frame size); fewer where the memory budget needs it.")
@click.option("--conceal", is_flag=True,
              help="Decode past damaged groups: repeat the last good frame up to the next key group.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@_user_errors
def decode(input, output, frame_range, device, video_codec, crf, lossless, batch, conceal, quiet):
    """Decode a .nirv file INPUT to a video file or PNG folder."""
    from codec.decoder import decode as run

    report = run(input, output, frames=frame_range, device=device, codec=video_codec, crf=crf,
                 lossless=lossless, batch=batch, progress=not quiet, conceal=conceal)
    for concealed in report.concealed:
        click.echo(f"warning: {concealed}", err=True)
    click.echo(report.summary())


@main.command()
@click.argument("input", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_user_errors
def info(input, as_json):
    """Show a .nirv file's header, per-group sizes and stats, and totals."""
    from codec.info import describe, format_description

    desc = describe(input)
    click.echo(_json(desc) if as_json else format_description(desc))


@main.command(name="eval")
@click.argument("decoded", type=click.Path(path_type=str))
@click.option("--ref", "reference", required=True, type=click.Path(path_type=str), help="The original video.")
@click.option("--nirv", type=click.Path(path_type=str), default=None, help="The .nirv file, to report bpp.")
@click.option("--frames", "frame_range", default=None, help="Frames START:STOP of the reference that were encoded.")
@click.option("--size", default=None, help="WIDTHxHEIGHT for raw .yuv inputs.")
@click.option("--ignore-trailing-bytes", is_flag=True, help="Let a raw .yuv end in a partial frame (dropped).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with per-frame PSNR).")
@_user_errors
def eval_(decoded, reference, nirv, frame_range, size, ignore_trailing_bytes, as_json):
    """Compare DECODED with the original: PSNR (RGB, YUV 6:1:1), MS-SSIM, bpp."""
    from codec.evaluate import evaluate

    start, stop = _range(frame_range)
    r = evaluate(decoded, reference, nirv=nirv, size=_size(size), start=start, stop=stop,
                 ignore_trailing_bytes=ignore_trailing_bytes)
    if as_json:
        click.echo(_json(r))
        return
    ms_ssim = "n/a (frames under 11x11)" if r["ms_ssim"] is None else f"{r['ms_ssim']:.4f}"
    line = (f"frames {r['frames']}  {r['width']}x{r['height']}  PSNR-RGB {r['psnr_rgb']:.2f} dB  "
            f"PSNR-YUV(6:1:1) {r['psnr_yuv']:.2f} dB  MS-SSIM {ms_ssim}")
    if "bpp" in r:
        line += f"  bpp {r['bpp']:.4f}"
    click.echo(line)
