"""Outputs: everything written to disk (a run's directory, the report, a comparison, predictions)."""
