"""The product's host side: plans cells, runs each in its own environment, records and summarises.

cli (the command line) -> matrix (matrix.yaml, validated) -> cells (planning, a cell's spec and variables) ->
orchestrate (the run loop) -> executors/ (where a cell runs) -> results (the result contract) -> progress, summary.
Never imports Keras or a framework (those live in the environments, reached only through `models.worker`), and
never imports the tooling package (tooling/: the private Docker engine, the local Slurm cluster, benchmarks),
which is built on runner/, not part of it. Reports (reports/) are imported lazily, once a run has ended.
"""
