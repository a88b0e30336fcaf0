"""The tiny trained models that several test modules use, trained once per session."""

import pytest

from tests.tasks.test_captioning import TINY as TINY_CAPTIONING
from tests.tasks.test_parsing import TINY as TINY_PARSING
from tests.tasks.test_translation import TINY as TINY_TRANSLATION
from zoo import runner
from zoo.config import resolve_recipe


def _train(task: str, tiny: dict, tmp_path_factory):
    root = tmp_path_factory.mktemp(task)
    recipe = resolve_recipe(
        tiny, [f"export.dir={root / 'saved_models'}", f"run.dir={root / 'runs'}"]
    )
    logs = []
    result = runner.train(recipe, log=logs.append)
    return recipe, result, logs


@pytest.fixture(scope="session")
def trained_translation(tmp_path_factory):
    """`(recipe, result, logs)` of the tiny translation recipe, exported as version 1."""
    return _train("translation", TINY_TRANSLATION, tmp_path_factory)


@pytest.fixture(scope="session")
def trained_parsing(tmp_path_factory):
    return _train("parsing", TINY_PARSING, tmp_path_factory)


@pytest.fixture(scope="session")
def trained_captioning(tmp_path_factory):
    return _train("captioning", TINY_CAPTIONING, tmp_path_factory)
