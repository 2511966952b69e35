"""Floor 4: reading what the user asks. Suites from YAML (suite, suitemodel, yamlsource), the
shipped suites, input images, and the plan that expands a suite into cells (above the models,
whose names and sources a plan checks)."""
