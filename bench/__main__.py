"""`python -m bench` runs every benchmark, each in its own process; `python -m bench NAME ...` runs some."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from . import BENCHMARKS
from ._common import PY, RESULTS, ROOT, child_env


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    failed: list[str] = []
    took: dict[str, float] = {}
    for name in names:
        t = time.perf_counter()
        # one process per benchmark: no shared registry, memory or event-loop state between them
        code = subprocess.call([PY, "-m", f"bench.{name}"], cwd=ROOT, env=child_env())
        took[name] = time.perf_counter() - t
        if code != 0:
            failed.append(name)
            print(f"!! {name} failed with exit code {code}", flush=True)
        print(flush=True)
    total = time.perf_counter() - t0
    verdicts: list[tuple[str, str, str]] = []
    for name in names:
        path = RESULTS / f"{name}.json"
        if name in failed or not path.exists():
            continue
        for row in json.loads(path.read_text())["rows"]:
            if row["verdict"] in ("PASS", "MISS"):
                verdicts.append((name, row["figure"], row["verdict"]))
    print("== summary")
    for name, figure, verdict in verdicts:
        print(f"   {verdict}  {name}: {figure}")
    print("   " + ", ".join(f"{n} {s:.0f} s" for n, s in took.items()))
    print(
        f"   total {total:.0f} s; {sum(v == 'PASS' for *_, v in verdicts)} PASS, "
        f"{sum(v == 'MISS' for *_, v in verdicts)} MISS" + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(
        json.dumps(
            {
                "total_s": total,
                "took_s": took,
                "failed": failed,
                "verdicts": [{"benchmark": n, "figure": f, "verdict": v} for n, f, v in verdicts],
            },
            indent=2,
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
