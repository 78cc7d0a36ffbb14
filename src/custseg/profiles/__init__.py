"""Profiles: statistics per segment, names, descriptions, strategies and best sellers."""
