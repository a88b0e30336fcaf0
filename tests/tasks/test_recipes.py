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


FLICKR8K_1K = RECIPES.parents[1] / "shared/data/captioning/flickr8k_1k"


@pytest.mark.slow
@pytest.mark.skipif(not FLICKR8K_1K.exists(), reason=f"{FLICKR8K_1K} is absent")
def test_flickr8k_recipe_reaches_bleu4_010_and_cider_025_in_20_minutes(tmp_path, monkeypatch):
    """The shipped recipe, unchanged, on the 1,000 shared Flickr8k photos."""
    monkeypatch.chdir(RECIPES.parent)
    recipe = load_recipe(
        RECIPES / "captioning_flickr8k.yaml",
        [f"export.dir={tmp_path / 'saved_models'}", f"run.dir={tmp_path / 'runs'}"],
    )
    metrics = runner.train(recipe)["metrics"]
    assert metrics["examples"] == 100
    assert metrics["bleu_4"] >= 0.10, metrics["bleu_4"]
    assert metrics["cider"] >= 0.25, metrics["cider"]
    assert metrics["train_seconds"] <= 20 * 60, metrics["train_seconds"]


@pytest.mark.skipif(not FLICKR8K_1K.exists(), reason=f"{FLICKR8K_1K} is absent")
def test_flickr8k_recipe_runs_offline_with_its_pretrained_encoder(tmp_path, monkeypatch):
    """The shipped recipe's whole path on fewer photos: ImageNet weights from the package."""
    monkeypatch.chdir(RECIPES.parent)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras-cache"))
    recipe = load_recipe(
        RECIPES / "captioning_flickr8k.yaml",
        [
            f"export.dir={tmp_path / 'saved_models'}",
            f"run.dir={tmp_path / 'runs'}",
            "data.max_images=40",
            "data.validation_size=10",
            "data.test_size=10",
            "model.units=32",
            "model.attention_units=16",
            "model.embedding_dim=16",
            "train.epochs=1",
        ],
    )
    logs = []
    result = runner.train(recipe, log=logs.append)
    text = "\n".join(logs)
    assert "captions.txt: 5001 lines, 1000 images with 5000 captions kept" in text
    assert "training on its cached features" in text
    assert result["metrics"]["examples"] == 10
    assert (Path(result["export_dir"]) / "saved_model.pb").is_file()


# Recipes that read the samples in ../shared/data, and the file each needs.
SHARED_INPUTS = {
    "translation_tatoeba.yaml": "translation/fra_eng.tsv",
    "parsing_ptb.yaml": "parsing/treebank",
    "captioning_flickr8k.yaml": "captioning/flickr8k_1k/captions.txt",
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
