"""ModelServing's sequencing against a recording registry double: what serves after each poll."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fraudstream.config import DEFAULT_MODEL_PATH, Settings
from fraudstream.ml.registry import CHALLENGER, CHAMPION, RegistryError, RegistryUnreachable, Version
from fraudstream.pipeline.detector.serving import ModelServing

NAME = "fraudstream"


class RecordingRegistry:
    """Aliases set by the test; ``download`` copies the packaged model, or fails as told."""

    def __init__(self, root: Path) -> None:
        self.name = NAME
        self.root = root
        self.aliases: dict[str, int] = {}
        self.down = False
        self.corrupt: set[int] = set()
        self.downloads: list[int] = []

    def alias(self, alias: str) -> Version | None:
        if self.down:
            raise RegistryUnreachable("model registry unreachable: connection refused")
        number = self.aliases.get(alias)
        return None if number is None else Version(NAME, number, (alias,), {}, "run", datetime.now(UTC))

    def download(self, version: Version, cache_dir: Path) -> Path:
        self.downloads.append(version.number)
        if version.number in self.corrupt:
            raise RegistryError(f"{version.label}: model.cbm does not match the sha256 registered with it")
        target = self.root / str(version.number)
        if not target.exists():
            shutil.copytree(DEFAULT_MODEL_PATH, target)
        return target


@pytest.fixture
def registry(tmp_path: Path) -> RecordingRegistry:
    return RecordingRegistry(tmp_path)


@pytest.fixture
def serving(registry: RecordingRegistry, tmp_path: Path) -> ModelServing:
    return ModelServing(Settings(data_dir=tmp_path), registry)


def test_nothing_serves_until_a_champion_is_verified(serving, registry):
    serving.poll()
    assert serving.status()["champion"] is None
    assert "no 'champion' alias" in serving.status()["model_registry"]
    registry.aliases[CHAMPION] = 1
    serving.poll()
    assert serving.current().champion.version == "fraudstream/1" and serving.current().challenger is None
    assert serving.status()["model_registry"] == "ok"


def test_a_promotion_publishes_new_models_and_unchanged_ones_are_not_loaded_again(serving, registry):
    registry.aliases[CHAMPION] = 1
    serving.poll()
    before = serving.current()
    registry.aliases[CHALLENGER] = 2
    serving.poll()
    with_challenger = serving.current()
    assert (
        with_challenger.champion is before.champion and with_challenger.challenger.version == "fraudstream/2"
    )
    registry.aliases[CHAMPION] = 2
    del registry.aliases[CHALLENGER]
    serving.poll()
    assert serving.current().champion.version == "fraudstream/2" and serving.current().challenger is None
    assert before.champion.version == "fraudstream/1"  # a batch holding the old Models keeps it whole
    assert registry.downloads == [1, 2, 2]


def test_an_unreachable_registry_or_a_bad_model_leaves_the_serving_models_in_place(serving, registry):
    registry.aliases[CHAMPION] = 1
    serving.poll()
    serving_models = serving.current()
    registry.down = True
    serving.poll()
    assert serving.status()["model_registry"].startswith("unreachable since")
    registry.down, registry.aliases[CHAMPION] = False, 3
    registry.corrupt.add(3)
    serving.poll()
    assert serving.current() is serving_models
    assert "does not match the sha256" in serving.status()["model_registry"]


def test_a_challenger_that_fails_its_checks_is_refused_once_and_the_champion_serves(serving, registry):
    registry.aliases.update({CHAMPION: 1, CHALLENGER: 4})
    registry.corrupt.add(4)
    serving.poll()
    serving.poll()
    assert serving.current().champion.version == "fraudstream/1" and serving.current().challenger is None
    assert serving.status()["model_registry"].startswith("challenger not loaded: fraudstream/4 refused")
    assert registry.downloads == [1, 4]
