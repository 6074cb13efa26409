"""Outcome analytics: reliable change and sudden gains, pure functions over numbers and polars frames."""
