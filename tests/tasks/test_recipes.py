"""The shipped recipes validate, and reach their targets (long: `pytest -m slow`)."""

from pathlib import Path

import pytest

from zoo import runner
from zoo.config import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.slow
def test_translation_recipe_reaches_bleu_90_and_aer_020(tmp_path):

    recipe = load_recipe(
        RECIPES / "translation.yaml",
        [f"export.dir={tmp_path / 'saved_models'}", f"run.dir={tmp_path / 'runs'}"],
    )
    metrics = runner.train(recipe)["metrics"]
    assert metrics["bleu"] >= 90.0, metrics["bleu"]
    assert metrics["alignment_error_rate"] <= 0.20, metrics["alignment_error_rate"]


@pytest.mark.slow
def test_parsing_recipe_reaches_f1_95_with_only_well_formed_trees(tmp_path):

    recipe = load_recipe(
        RECIPES / "parsing.yaml",
        [f"export.dir={tmp_path / 'saved_models'}", f"run.dir={tmp_path / 'runs'}"],
    )
    metrics = runner.train(recipe)["metrics"]
    assert metrics["f1"] >= 95.0, metrics["f1"]
    assert metrics["well_formed"] == 100.0 and metrics["repaired"] == 0


@pytest.mark.slow
def test_captioning_recipe_reaches_bleu4_060_and_pointing_080(tmp_path):

    recipe = load_recipe(
        RECIPES / "captioning.yaml",
        [f"export.dir={tmp_path / 'saved_models'}", f"run.dir={tmp_path / 'runs'}"],
    )
    metrics = runner.train(recipe)["metrics"]
    assert metrics["bleu_4"] >= 0.60, metrics["bleu_4"]
    assert metrics["pointing_accuracy"] >= 0.80, metrics["pointing_accuracy"]


@pytest.mark.slow
@pytest.mark.skipif(
    not (RECIPES.parents[1] / "shared/data/captioning/flickr8k").exists(),
    reason="../shared/data/captioning/flickr8k is absent",
)
def test_flickr8k_recipe_as_shipped_trains_one_epoch_with_a_resnet_from_scratch(
    tmp_path, monkeypatch
):
    """The issue's command: the shipped recipe on the shared sample, no ImageNet file here."""

    monkeypatch.chdir(RECIPES.parent)
    recipe = load_recipe(
        RECIPES / "captioning_flickr8k.yaml",
        [
            f"export.dir={tmp_path / 'saved_models'}",
            f"run.dir={tmp_path / 'runs'}",
            "model.encoder.weights=null",
            "train.epochs=1",
        ],
    )
    result = runner.train(recipe)
    assert result["metrics"]["examples"] == 12
    assert (Path(result["export_dir"]) / "saved_model.pb").is_file()


# Recipes that read the samples in ../shared/data, and the file each needs.
SHARED_INPUTS = {
    "translation_tatoeba.yaml": "translation/fra_eng.tsv",
    "parsing_ptb.yaml": "parsing/treebank",
    "captioning_flickr8k.yaml": "captioning/flickr8k/Flickr8k.token.txt",
    "captioning_coco.yaml": "captioning/coco/captions_sample.json",
}


# Fine-tuning recipes, and the base export each starts from.
FINETUNING = {"translation_finetune_tatoeba.yaml": "saved_models/translation"}


@pytest.mark.parametrize("name", sorted(p.name for p in RECIPES.glob("*.yaml")))
def test_every_shipped_recipe_validates(name, monkeypatch, request):
    if name in SHARED_INPUTS or name in FINETUNING:
        data = SHARED_INPUTS.get(name, "translation/deu_eng_sample.tsv")
        shared = RECIPES.parents[1] / "shared" / "data" / data
        if not shared.exists():
            pytest.skip(f"../shared/data is absent: {name} points at {shared}")
        monkeypatch.chdir(RECIPES.parent)
    overrides = []
    if name in FINETUNING:
        # The base export is made by another recipe: the tiny one stands in for it.
        with open(RECIPES / name, encoding="utf-8") as file:
            assert f"init_from: {FINETUNING[name]}\n" in file.read()
        task = name.split("_")[0]
        base = Path(request.getfixturevalue(f"trained_{task}")[1]["export_dir"])
        overrides.append(f"init_from={base.parent}")
    recipe = load_recipe(RECIPES / name, overrides)
    assert recipe["task"] == name.split("_")[0].removesuffix(".yaml")
    if name in FINETUNING:
        assert recipe["init_from"] == str(base.resolve())
    else:
        assert recipe["name"] == name.removesuffix(".yaml")
