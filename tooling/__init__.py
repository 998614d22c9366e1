"""Tooling for tests, CI and measurement, kept apart from the product (runner/):

    engine.py         a private Docker engine (`make engine`, `make engine-stop`; .ci/run starts it the same way)
    slurm_cluster.py  a local single-node Slurm cluster (`make slurm-up`, `make slurm-down`; tests/test_slurm.py)
    bench.py          what the harness costs the training it measures (`make bench-overhead`)
    bench_docker.py   what a container costs against the venv executor (`python -m tooling.bench_docker`)
    bench_slurm.py    what Slurm costs and gives on one machine (`make bench-slurm`)
    nightly.sh        the nightly job's steps: run, add to the history, check, the history site, `history check`

Imports runner/ freely; runner/ must never import this package, and models/ (the worker) never sees it.
"""
