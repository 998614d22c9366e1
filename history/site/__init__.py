"""The static history site: index.html and one page per test, inline CSS and SVG, no script, nothing fetched."""
