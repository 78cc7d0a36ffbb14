"""Sources: where the order lines come from, read into canonical order lines (a lazy Ibis table)."""
