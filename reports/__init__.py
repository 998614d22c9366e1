"""Reports: turn a run's result files into what people read (HTML, Markdown, plots, tidy data) and compare runs.

Host side, like runner/: reads result.json files through common.results (the contract). It never imports runner
(which imports it, lazily, to write the report a run ends with), Keras, or the tooling package. Generated output
goes beside the results, to results/<run-id>/report/ (a merged `--name NAME` report: results/reports/NAME/);
only this package's source lives here.
"""
