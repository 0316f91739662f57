"""Video input and output: stream RGB frames from files, raw .yuv or PNG folders, and write them back.

Example:
    >>> from codec.video import open_video, VideoWriter
    >>> with open_video("in.y4m") as src, VideoWriter("out.mkv", src.info.width, src.info.height,
    ...                                               src.info.fps, lossless=True) as out:   # doctest: +SKIP
    ...     for group in src.groups(16):
    ...         out.write(group)
"""

from codec.video.reader import open_video
from codec.video.source import VideoInfo, VideoSource
from codec.video.writer import VideoWriter

__all__ = ["VideoInfo", "VideoSource", "VideoWriter", "open_video"]
