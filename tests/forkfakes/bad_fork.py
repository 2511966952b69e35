"""Preloaded into the fork server by tests: its forks see themselves as forks of a process in which
CUDA was started (what torch.cuda reports after such a fork), with no GPU needed to start it."""

import torch

torch.cuda._is_in_bad_fork = lambda: True
