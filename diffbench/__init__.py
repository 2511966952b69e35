"""diffbench: trustworthy benchmarks of diffusion pipelines on real hardware."""

__version__ = "0.1.0"
SCHEMA_VERSION = 2
