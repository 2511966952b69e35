"""Preloaded into the fork server by tests: the server dies in the middle of its imports."""

import os

os._exit(3)
