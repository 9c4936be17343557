"""Logging for rule jobs: everything a job prints (logging, warnings, tqdm progress bars) goes to its `log:` file."""

from __future__ import annotations

import logging
import os
import sys


def setup_job_logging(log_path: str | os.PathLike[str] | None, level: int = logging.INFO) -> logging.Logger:
    """Send logging, stderr and stdout of this process to `log_path` (append); return the 'neurotext' logger."""
    if log_path:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        stream = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the job
        sys.stderr = stream
        sys.stdout = stream
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logging.captureWarnings(True)
    return logging.getLogger("neurotext")


def progress(iterable=None, **kwargs):
    """A tqdm progress bar that updates at most every 5 s when not on a terminal (so logs stay short)."""
    from tqdm.auto import tqdm

    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 5.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
