"""Runtime: parallelism, progress display, signal handling and background imports."""
