"""Benchmarks of mcp-scheduler, each against a baseline measured in the same run.

`python -m bench` runs them all (each in its own process); `python -m bench NAME [NAME ...]` runs
some. Every benchmark prints a table and writes `bench/results/<name>.json`. See `bench/README.md`.
"""

BENCHMARKS = (
    "overhead", "lateness", "scale", "coldstart", "run_now", "overload", "multiprocess", "lateness_pg", "standby_scale",
    "shell_supervisor", "frontend",
)
