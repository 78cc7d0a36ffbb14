"""Cleaning: named rules that drop order lines, each counted; where the dropped lines are."""
