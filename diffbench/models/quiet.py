"""Quiet libraries: their progress bars and advisory notices never reach the user's terminal,
which belongs to diffbench (a worker's parent, or a command's own lines)."""

from __future__ import annotations

import os
import threading


def quiet_libraries() -> None:
    """Silence progress bars and advisory warnings of the libraries: the parent owns the terminal."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import logging
    import warnings

    for noisy in ("torch.utils._pytree", "torchao"):  # import-time notices of optional quantization libraries
        logging.getLogger(noisy).setLevel(logging.ERROR)

    warnings.filterwarnings("ignore")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    # tqdm's default lock is a multiprocessing semaphore: a worker killed on a second Ctrl-C
    # leaves it behind and the resource tracker warns of a leak. A thread lock is all one
    # process needs.
    import tqdm

    tqdm.tqdm.set_lock(threading.RLock())
