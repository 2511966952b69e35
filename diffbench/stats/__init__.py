"""Floor 1: statistics shared by run control (repeats: auto) and analysis: intervals for medians
and ratios, and the tests for a GPU whose speed drifts or holds clock states."""
