"""LightGBM fit time with OpenMP's default (spinning) and passive wait policies, on a busy machine.

OpenMP threads that spin while waiting take the CPU the other processes on the machine need, and lose
their own time slices to them: the slowdown shows only when the machine is busy (a Dagster run with
parallel steps, the test suite on two workers, several services on one box). Each policy runs in a fresh
process, since OpenMP reads the variable once when it loads.

Usage: .venv/bin/python bench/omp_wait.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

FIT = """
import resource, time
import numpy as np, lightgbm as lgb
rng = np.random.default_rng(0)
X, y = rng.normal(size=(60_000, 20)), rng.poisson(2, size=60_000)
start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
lgb.LGBMRegressor(objective="tweedie", n_estimators=200, num_leaves=15, verbose=-1).fit(X, y)
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
print(f"{time.perf_counter() - start:.1f} {cpu:.1f}")
"""


def fit_seconds(policy: str) -> tuple[float, float]:
    env = {name: value for name, value in os.environ.items() if name != "OMP_WAIT_POLICY"}
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", FIT], env=env, capture_output=True, text=True, check=True)
    wall, cpu = out.stdout.split()
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| policy | wall s | CPU s |\n|---|---|---|")
    for _ in range(args.repeats):
        for policy in ("default", "PASSIVE"):  # interleaved, so both see the same load
            wall, cpu = fit_seconds(policy)
            print(f"| {policy} | {wall:.1f} | {cpu:.1f} |", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
