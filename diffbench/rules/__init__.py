"""Floor 2: the rules and registries every layer reads. The setting axes and their checks, model
families, samplers, step caches, LoRAs, quantization backends, tasks, which settings apply where,
the memory floor of a decode, how many repeats decide, and memory sizes as people write them."""
