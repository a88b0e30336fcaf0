"""The shipped recipe reaches its targets (long: `pytest -m slow`)."""

from pathlib import Path

import pytest

from zoo.config import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.slow
def test_translation_recipe_reaches_bleu_90_and_aer_020(tmp_path):
    from zoo.tasks import translation

    recipe = load_recipe(
        RECIPES / "translation.yaml",
        [f"export.dir={tmp_path / 'saved_models'}", f"run.dir={tmp_path / 'runs'}"],
    )
    metrics = translation.run(recipe)["metrics"]
    assert metrics["bleu"] >= 90.0, metrics["bleu"]
    assert metrics["alignment_error_rate"] <= 0.20, metrics["alignment_error_rate"]


@pytest.mark.parametrize("name", sorted(p.name for p in RECIPES.glob("*.yaml")))
def test_every_shipped_recipe_validates(name, monkeypatch):
    shared = RECIPES.parents[1] / "shared" / "data" / "translation" / "deu_eng_sample.tsv"
    overrides = []
    if name == "translation_tatoeba.yaml":
        if not shared.exists():
            pytest.skip("../shared/data is absent: the Tatoeba recipe points at its sample")
        monkeypatch.chdir(RECIPES.parent)
    recipe = load_recipe(RECIPES / name, overrides)
    assert recipe["task"] == "translation"
