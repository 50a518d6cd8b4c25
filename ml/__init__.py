"""Code shared by the Dagster code location (`orchestration`) and the inference service (`serving`).

OpenMP worker threads (LightGBM, implicit) spin while they wait for work by default, burning the CPU that
other processes need: on a busy 2-core machine one LightGBM fit took 263 s instead of 4 s (bench/omp_wait.py).
Passive waiting is set here, before any model library loads its OpenMP runtime; an explicit
OMP_WAIT_POLICY in the environment wins.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
