"""Floor 2: the results contract. What a results line holds (records), how results files are read
back and validated (results), and how files are written so that nothing is lost (files)."""
