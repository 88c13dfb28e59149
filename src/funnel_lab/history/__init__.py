"""The run history: what each run of a run_name found, kept for the next one, and what changed since."""
