"""The 2017 article's published figures (article_2017.yaml), loaded once and validated, so a typo in the reference
data is an error naming the field instead of a silently missing bar."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

ARTICLE_FILE = Path(__file__).with_name("article_2017.yaml")


class Figure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    s_per_epoch: float | None = Field(default=None, gt=0)
    accuracy: float | None = Field(default=None, ge=0, le=1)
    approx: bool = False  # the time is approximate
    accuracy_approx: bool = False
    text: str | None = None
    source: str = Field(min_length=1)  # the notebook, commit and %timeit line (or the article's text) it comes from
    note: str | None = None  # what the figure includes or follows, where the article's text and notebooks disagree


class Test(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    epochs: int
    batch_size: int
    train_samples: int
    validation_samples: int
    flop_per_epoch: float
    target_accuracy: float = Field(gt=0, le=1)
    accuracy_text: str | None = None
    figures: dict[str, Figure]

    def ranking(self) -> list[tuple[str, Figure]]:
        """Backends with a number, fastest first; the article's words-only figures cannot be ranked."""
        ranked = [(b, f) for b, f in self.figures.items() if f.s_per_epoch is not None]
        return sorted(ranked, key=lambda item: item[1].s_per_epoch or 0.0)


class Configuration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    keras: str
    framework: str
    cuda: str
    cudnn: str


class Hardware(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    device: str
    kind: str
    match: str
    peak_fp32_tflops: float
    cpu: str
    memory_gb: int
    os: str


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    author: str
    published: str
    notebooks: str
    commits: dict[str, str] = {}  # short id -> full commit of the notebooks repository
    reference: str


class Article(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int
    source: Source
    hardware: Hardware
    python: str
    method: str
    configurations: dict[str, Configuration]
    # matrix backend names that stand for an article backend (the 2017 TensorFlow is `tensorflow1` in the matrix)
    aliases: dict[str, str] = {}
    tests: dict[str, Test]

    def figure_key(self, backend: str) -> str:
        return self.aliases.get(backend, backend)

    def citation(self) -> str:
        s = self.source
        return f'{s.author}, "{s.title}", {s.published}. Notebooks: {s.notebooks}.'

    def backend_title(self, backend: str) -> str:
        conf = self.configurations.get(backend)
        return conf.title if conf else backend


@cache
def load_article(path: Path = ARTICLE_FILE) -> Article:
    return Article.model_validate(yaml.safe_load(path.read_text()))
