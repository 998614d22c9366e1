"""Reports: turn a run's result files into what people read (HTML, Markdown, plots, tidy data) and compare runs.

Host side, like runner/: reads result.json files through runner.results (the contract), never imports Keras,
the orchestration loop or the tooling package. Generated output goes beside the results, to
results/<run-id>/report/ (a merged `--name NAME` report: results/reports/NAME/); only this package's source
lives here.
"""
