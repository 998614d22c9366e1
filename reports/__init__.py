"""Reports: turn a run's result files into what people read (HTML, Markdown, plots, tidy data) and compare runs.

Host side, like runner/: reads result.json files through runner.results, never imports Keras. Generated output goes
to reports/<run-id>/ (gitignored); only this package's source lives here.
"""
