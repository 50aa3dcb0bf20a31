"""The experiments: every claim and exercise of the texts, as `python -m experiments.NAME`."""
