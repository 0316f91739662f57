"""tqdm progress bars on stderr that vanish when the work fails, leaving only the error line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def progress_bar(total: int, unit: str, enabled: bool) -> Iterator:
    """Yield a tqdm bar (or None when disabled); on an exception the bar is erased.

    >>> with progress_bar(3, "frame", enabled=False) as bar:
    ...     bar is None
    True
    """
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, dynamic_ncols=True)
    try:
        yield bar
    except BaseException:
        bar.leave = False
        raise
    finally:
        bar.close()
