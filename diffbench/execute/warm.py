"""What the fork server imports once, so that each worker forked from it starts with it imported.

Nothing here may initialise CUDA: a CUDA driver started in the server cannot be used by its forks.
torch.cuda.is_available() (which a library may call while it is imported) is answered through
NVML for the duration of these imports, which does not start the driver.
"""

from __future__ import annotations

import os

_NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"
_before = os.environ.get(_NVML_CHECK)
os.environ[_NVML_CHECK] = "1"
try:
    from ..models.quiet import quiet_libraries

    quiet_libraries()  # import-time notices (torchao, pytree) would reach the user's terminal
    import diffusers  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from diffusers import DiffusionPipeline  # noqa: F401  (the lazy module's heavy part)

    from . import configure, generation, worker  # noqa: F401
    from .axes import module, worker_modules

    for _name in worker_modules(at_load=True) + worker_modules(at_load=False):  # the declared axes' code
        module(_name)
finally:
    if _before is None:
        os.environ.pop(_NVML_CHECK, None)
    else:
        os.environ[_NVML_CHECK] = _before
