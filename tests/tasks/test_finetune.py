"""Fine-tuning exports on new data (`zoo finetune`, `init_from`) and `zoo evaluate`.

The default run fine-tunes the session's tiny exports for an epoch and checks
the mechanics (next version, base untouched, vocabularies, frozen parts,
errors before training). The `slow` tests train small models that learn
something, fine-tune them on shifted data and show the metric rising.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.tasks.processes import call_zoo
from tests.tasks.shifted_data import (
    write_shifted_scenes,
    write_shifted_translation,
    write_shifted_treebank,
)
from zoo import cli, runner
from zoo.config import RecipeError, resolve_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SHARED_TSV = RECIPES.parents[1] / "shared/data/translation/deu_eng_sample.tsv"


def _copy_export(result: dict, root: Path) -> Path:
    """A private copy of a session export's version 1: `root/saved_models/<name>`."""
    source = Path(result["export_dir"])
    target = root / "saved_models" / source.parent.name
    shutil.copytree(source, target / "1")
    return target


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _finetune(export: Path, root: Path, data: dict | None, overrides=(), logs=None):
    from zoo.runner import finetune

    raw = {"init_from": str(export)}
    if data is not None:
        raw["data"] = data
    recipe = resolve_recipe(raw, [f"run.dir={root / 'runs'}", *overrides])
    return finetune(recipe, log=(logs if logs is not None else []).append)


# --- the mechanics, on the tiny exports ---------------------------------------------------
@pytest.mark.skipif(not SHARED_TSV.exists(), reason="../shared/data is absent")
def test_the_tatoeba_finetuning_recipe_extends_the_vocabulary_and_exports_version_2(
    trained_translation, tmp_path, monkeypatch
):
    """recipes/translation_finetune_tatoeba.yaml from the tiny model, on the shared sample."""
    import zoo
    from zoo.config import load_recipe
    from zoo.finetune import load_base
    from zoo.runner import finetune

    export = _copy_export(trained_translation[1], tmp_path)
    base_files = _digest(export / "1")
    monkeypatch.chdir(RECIPES.parent)  # the recipe's data path is relative to the checkout
    recipe = load_recipe(
        RECIPES / "translation_finetune_tatoeba.yaml",
        [
            f"init_from={export}",
            f"run.dir={tmp_path / 'runs'}",
            "data.max_pairs=600",
            "data.validation_size=10",
            "data.test_size=10",
            "train.epochs=1",
            "finetune.freeze=[attention]",
        ],
    )
    logs = []
    result = finetune(recipe, log=logs.append)
    assert Path(result["export_dir"]) == export / "2"
    assert _digest(export / "1") == base_files  # the base version is only read
    extra = export / "2" / "assets.extra"
    target_vocab = (extra / "target_vocab.txt").read_text().split("\n")
    base_vocab = (export / "1/assets.extra/target_vocab.txt").read_text().split("\n")
    assert target_vocab[: len(base_vocab) - 1] == base_vocab[:-1]  # old ids kept
    added = set(target_vocab) - set(base_vocab)
    assert {"ich", "ist"} <= added  # German, new to the synthetic model
    metrics = json.loads((extra / "metrics.json").read_text())
    finetune_metrics = metrics["finetune"]
    assert finetune_metrics["base"] == str((export / "1").resolve())
    assert finetune_metrics["frozen"] == ["attention"]
    for when in ("validation_before", "validation_after"):
        assert finetune_metrics[when]["examples"] == 10
        assert 0 <= finetune_metrics[when]["bleu"] <= 100
    assert finetune_metrics["vocabulary"]["target"]["added"] == len(added)
    saved = (extra / "recipe.yaml").read_text()
    assert f"init_from: {(export / '1').resolve()}" in saved and "vocab: extend" in saved
    text = "\n".join(logs)
    assert "validation before: BLEU" in text and "validation after: BLEU" in text
    assert "attention frozen" in text
    # The frozen attention did not move; the rest of the decoder did.
    old, new = load_base(export / "1").model, load_base(export / "2").model
    for before, after in zip(
        old.decoder.attention_layer.weights, new.decoder.attention_layer.weights, strict=True
    ):
        np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
    assert not np.allclose(
        np.asarray(old.decoder.output_dense.kernel), np.asarray(new.decoder.output_dense.kernel)
    )
    # `zoo.load` on the folder serves the new version.
    loaded = zoo.load(export)
    assert loaded.path.name == "2"
    assert isinstance(loaded.translate("I know.").text, str)


def test_extend_leaves_the_outputs_for_old_tokens_unchanged(trained_translation):
    from zoo.finetune import extended, load_base, transfer_weights
    from zoo.samplers import greedy_search
    from zoo.tasks import get_task

    recipe, result, _ = trained_translation
    base = load_base(result["export_dir"])
    tokenizers = {
        "source": extended(base.tokenizers["source"], ["zorblat", "quaggy", "##xq"]),
        "target": extended(base.tokenizers["target"], ["holo", "miko"]),
    }
    model = get_task("translation").build_model(recipe, tokenizers)
    grown = transfer_weights(base.model, model)
    assert len(grown) == 4  # two embeddings, the output kernel and bias
    rng = np.random.default_rng(0)
    old_source = base.tokenizers["source"].vocab_size
    old_target = base.tokenizers["target"].vocab_size
    source = rng.integers(4, old_source, size=(6, 9))
    source[:, -1] = 3
    target_in = rng.integers(4, old_target, size=(6, 7))
    target_in[:, 0] = 2
    old_logits, old_attention = base.model.forward_with_attention(source, target_in)
    new_logits, new_attention = model.forward_with_attention(source, target_in)
    new_logits = np.asarray(new_logits)
    assert new_logits.shape[-1] == old_target + 2
    np.testing.assert_allclose(new_logits[..., :old_target], np.asarray(old_logits), atol=1e-5)
    np.testing.assert_allclose(np.asarray(new_attention), np.asarray(old_attention), atol=1e-6)
    # A new token scores the mean logit: never the best one.
    assert (new_logits[..., old_target:].max(-1) < new_logits[..., :old_target].max(-1)).all()

    def decode(m):
        memory = m.encode(source)
        out = greedy_search(
            m.step,
            m.initial_state(memory),
            memory,
            batch_size=6,
            start_id=2,
            end_id=3,
            max_length=12,
        )
        return np.asarray(out["tokens"]), np.asarray(out["scores"])

    old_tokens, _ = decode(base.model)
    new_tokens, _ = decode(model)
    np.testing.assert_array_equal(new_tokens, old_tokens)


def test_parsing_finetune_refuses_a_new_label_without_extend_and_adds_it_with(
    trained_parsing, tmp_path
):
    export = _copy_export(trained_parsing[1], tmp_path)
    folder = write_shifted_treebank(tmp_path / "trees", {"train": 60, "dev": 10, "test": 10})
    data = {
        "kind": "treebank",
        "path": str(folder),
        "validation_files": ["dev.mrg"],
        "test_files": ["test.mrg"],
    }
    from zoo.finetune import FinetuneError

    with pytest.raises(FinetuneError, match=r"symbols the model cannot write: .*\(INTJ"):
        _finetune(export, tmp_path, data, ["train.epochs=1"])
    assert sorted(p.name for p in export.iterdir()) == ["1"]

    logs = []
    result = _finetune(
        export,
        tmp_path,
        data,
        [
            "finetune.vocab=extend",
            "train.epochs=1",
            "finetune.learning_rate_multipliers.encoder=0.1",
            "decode.beam_size=1",
            "evaluate.unconstrained=false",
        ],
        logs,
    )
    extra = Path(result["export_dir"]) / "assets.extra"
    assert {"(INTJ", ")INTJ", "oh"} <= set((extra / "target_vocab.txt").read_text().split()) | set(
        (extra / "source_vocab.txt").read_text().split()
    )
    metrics = json.loads((extra / "metrics.json").read_text())
    # Constrained decoding keeps every tree well-formed, new label or not.
    assert metrics["finetune"]["validation_after"]["well_formed"] == 100.0
    assert "F1" in "\n".join(logs)


def test_captioning_finetune_adds_a_new_colour_word_and_leaves_the_frozen_cnn(
    trained_captioning, tmp_path
):
    import zoo

    recipe, result, _ = trained_captioning
    export = _copy_export(result, tmp_path)
    token_file = write_shifted_scenes(tmp_path / "pink", 40, recipe["data"]["image_size"])
    logs = []
    result = _finetune(
        export,
        tmp_path,
        {"kind": "flickr8k", "path": str(token_file), "validation_size": 6, "test_size": 6},
        ["finetune.vocab=extend", "finetune.min_count=1", "train.epochs=1"]
        + ["finetune.freeze=[cnn]", "finetune.learning_rate_multipliers.embeddings=2"],
        logs,
    )
    extra = Path(result["export_dir"]) / "assets.extra"
    assert "pink" in (extra / "caption_vocab.txt").read_text().split()
    metrics = json.loads((extra / "metrics.json").read_text())
    assert metrics["finetune"]["validation_before"]["examples"] == 6
    assert "train: the encoder is frozen; training on its cached features" in logs
    # The frozen CNN did not move.
    from zoo.finetune import load_base

    old, new = load_base(export / "1").model, load_base(export / "2").model
    assert old.encoder.backbone.weights
    for before, after in zip(
        old.encoder.backbone.weights, new.encoder.backbone.weights, strict=True
    ):
        np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
    caption = zoo.load(export).caption(str(tmp_path / "pink/images/scene0.png"))
    assert caption.attention.shape[1:] == (3, 3)


# --- errors before training, saved_models untouched ---------------------------------------
@pytest.fixture
def tiny_export(trained_translation, tmp_path):
    return _copy_export(trained_translation[1], tmp_path)


@pytest.fixture
def zoo_cli(capsys, monkeypatch, tmp_path):
    """`zoo ARGS` in this process (`call_zoo`), in the test's folder: (exit status, stderr)."""

    def run(*args):
        proc = call_zoo(capsys, monkeypatch, *args, cwd=tmp_path)
        return proc.returncode, proc.stderr

    return run


def test_finetune_of_a_version_that_does_not_exist_is_refused(tiny_export, zoo_cli):
    before = _digest(tiny_export)
    code, err = zoo_cli("finetune", str(tiny_export), "--version", "7", "--data", "x.tsv")
    assert code == 2
    assert f"init_from: {tiny_export} has no version 7; versions present: [1]" in err
    assert _digest(tiny_export) == before


def test_data_in_the_wrong_format_is_refused_before_training(tiny_export, tmp_path, zoo_cli):
    folder = write_shifted_treebank(tmp_path / "trees", {"train": 5})
    before = _digest(tiny_export)
    code, err = zoo_cli(
        "finetune",
        str(tiny_export),
        "--data",
        str(folder / "train.mrg"),
        "--set",
        f"run.dir={tmp_path / 'runs'}",
    )
    assert code == 2 and "train.mrg" in err and "Traceback" not in err
    assert _digest(tiny_export) == before
    # A format the task does not read is named by its key.
    code, err = zoo_cli("finetune", str(tiny_export), "--data", str(folder), "--format", "treebank")
    assert code == 2 and "data.kind: expected one of 'synthetic', 'tsv', 'parallel'" in err


def test_a_recipe_that_changes_the_models_shape_is_refused(tiny_export, tmp_path, zoo_cli):
    tsv = write_shifted_translation(tmp_path / "shifted.tsv", 30)
    before = _digest(tiny_export)
    code, err = zoo_cli(
        "finetune",
        str(tiny_export),
        "--data",
        str(tsv),
        "--set",
        "model.decoder.units=64",
        "--set",
        "model.decoder.dropout=0.2",  # allowed: no weight changes shape
    )
    assert code == 2
    assert "--set model.decoder.units=64: model.decoder.units: the base model" in err
    assert "has 16, this recipe 64: fine-tuning keeps the model's shape" in err
    assert "dropout" not in err
    assert _digest(tiny_export) == before
    # The same from a recipe file with init_from.
    recipe = tmp_path / "ft.yaml"
    recipe.write_text(
        f"init_from: {tiny_export}\ndata: {{kind: tsv, path: {tsv}}}\n"
        "tokenizer: {kind: word}\nfinetune: {freeze: [cnn]}\n"
    )
    with pytest.raises(RecipeError, match="tokenizer.kind: the base model .* has 'wordpiece'"):
        from zoo.config import load_recipe

        load_recipe(recipe)
    code, err = zoo_cli("run", str(recipe))
    assert code == 2 and "tokenizer.kind" in err and "Traceback" not in err


def test_freezing_a_part_whose_vocabulary_grows_is_refused_before_training(tiny_export, tmp_path):
    tsv = write_shifted_translation(tmp_path / "shifted.tsv", 40)
    data = {"kind": "tsv", "path": str(tsv), "validation_size": 5, "test_size": 5}
    logs = []
    with pytest.raises(RecipeError, match=r"finetune.freeze: encoder holds .*embeddings"):
        _finetune(
            tiny_export,
            tmp_path,
            data,
            ["finetune.vocab=extend", "finetune.freeze=[encoder]"],
            logs,
        )
    assert not any(line.startswith(("train:", "validation")) for line in logs)
    assert sorted(p.name for p in tiny_export.iterdir()) == ["1"]


def test_freezing_a_part_the_model_lacks_is_refused(tiny_export, tmp_path):
    with pytest.raises(RecipeError, match=r"finetune.freeze: a translation model has no 'cnn'"):
        _finetune(tiny_export, tmp_path, None, ["finetune.freeze=[cnn]"])
    assert sorted(p.name for p in tiny_export.iterdir()) == ["1"]


def test_finetune_settings_without_init_from_are_refused():
    with pytest.raises(RecipeError, match="finetune.vocab: applies only when fine-tuning"):
        resolve_recipe({"task": "translation", "finetune": {"vocab": "extend"}})


# --- zoo evaluate -------------------------------------------------------------------------
def test_zoo_evaluate_scores_every_pair_of_a_file_and_writes_json(tiny_export, tmp_path, capsys):
    tsv = write_shifted_translation(tmp_path / "shifted.tsv", 25)
    output = tmp_path / "metrics.json"
    before = _digest(tiny_export)
    code = cli.main(["evaluate", str(tiny_export), "--data", str(tsv), "--output", str(output)])
    out = capsys.readouterr().out
    assert code == 0
    metrics = json.loads(output.read_text())
    assert metrics["examples"] == 25 and metrics["split"] == "all"
    assert metrics["export"] == str((tiny_export / "1").resolve())
    assert metrics["data"] == str(tsv) and 0 <= metrics["bleu"] <= 100
    assert "test: sacreBLEU" in out and f"# metrics written to {output}" in out
    # Without --data: the export's own test split, as at export.
    code = cli.main(["evaluate", str(tiny_export), "--output", str(output)])
    exported = json.loads((tiny_export / "1/assets.extra/metrics.json").read_text())
    again = json.loads(output.read_text())
    assert code == 0 and again["split"] == "test"
    assert again["bleu"] == pytest.approx(exported["bleu"])
    assert _digest(tiny_export) == before


# --- the metric rises on shifted data (small models that learn) ---------------------------
SMALL_SEQ2SEQ = {
    "model": {
        "embedding_dim": 32,
        "encoder": {"units": 32},
        "attention": {"units": 32},
        "decoder": {"units": 64},
    },
    "train": {"batch_size": 32, "epochs": 4, "learning_rate": 0.01},
    "decode": {"beam_size": 1},
}


def _train_small_base(task: str, settings: dict, tmp_path: Path) -> Path:
    """Trains a small model that learns its task (about a minute); returns its export folder."""
    recipe = resolve_recipe(
        {"task": task, "name": "small", **settings},
        [f"export.dir={tmp_path / 'saved_models'}", f"run.dir={tmp_path / 'runs'}"],
    )
    runner.train(recipe, log=lambda *_: None)
    return tmp_path / "saved_models/small"


def _assert_rises(result: dict, metric: str, margin: float, what: str) -> None:
    finetune = result["metrics"]["finetune"]
    before = finetune["validation_before"][metric]
    after = finetune["validation_after"][metric]
    print(f"{what}, shifted validation {metric}: before {before:.3f}, after {after:.3f}")
    assert after >= before + margin


@pytest.mark.slow
def test_translation_finetune_on_new_words_and_a_new_pattern_raises_bleu(tmp_path):
    data = {"size": 3000, "validation_size": 50, "test_size": 50, "max_words": 10}
    settings = {**SMALL_SEQ2SEQ, "data": data, "tokenizer": {"vocab_size": 800}}
    settings["decode"] = {"beam_size": 1, "max_length": 24}
    base = _train_small_base("translation", settings, tmp_path)
    tsv = write_shifted_translation(tmp_path / "shifted.tsv", 1000, max_words=10)
    result = _finetune(
        base,
        tmp_path,
        {"kind": "tsv", "path": str(tsv), "validation_size": 40, "test_size": 40},
        ["finetune.vocab=extend", "train.epochs=3"],
    )
    _assert_rises(result, "bleu", 5.0, "translation")


@pytest.mark.slow
def test_parsing_finetune_on_a_new_construction_raises_f1(tmp_path):
    data = {"size": 3000, "validation_size": 50, "test_size": 50, "max_words": 10}
    settings = {**SMALL_SEQ2SEQ, "data": data, "evaluate": {"unconstrained": False}}
    base = _train_small_base("parsing", settings, tmp_path)
    folder = write_shifted_treebank(
        tmp_path / "trees", {"train": 1000, "dev": 40, "test": 40}, max_words=10
    )
    data = {
        "kind": "treebank",
        "path": str(folder),
        "validation_files": ["dev.mrg"],
        "test_files": ["test.mrg"],
    }
    result = _finetune(
        base, tmp_path, data, ["finetune.vocab=extend", "finetune.min_count=1", "train.epochs=3"]
    )
    _assert_rises(result, "f1", 5.0, "parsing")


@pytest.mark.slow
def test_captioning_finetune_on_a_new_colour_raises_bleu4(tmp_path):
    model = {
        "encoder": {"grid_size": 3, "coordinates": True},
        "embedding_dim": 32,
        "units": 64,
        "attention_units": 32,
        "gate": False,
        "doubly_stochastic": 0.0,
    }
    base = _train_small_base(
        "captioning",
        {
            "data": {"size": 3000, "validation_size": 50, "test_size": 50, "image_size": 48},
            "model": model,
            "train": {"batch_size": 32, "epochs": 5, "learning_rate": 0.003},
            "decode": {"beam_size": 1},
        },
        tmp_path,
    )
    token_file = write_shifted_scenes(tmp_path / "pink", 800, 48)
    # At the base's learning rate, 700 images undo more than they teach
    # (BLEU-4 0.62 -> 0.36 in a trial): a third of it, and the CNN frozen.
    result = _finetune(
        base,
        tmp_path,
        {"kind": "flickr8k", "path": str(token_file), "validation_size": 50, "test_size": 50},
        ["finetune.vocab=extend", "train.epochs=3", "train.learning_rate=0.001"]
        + ["finetune.freeze=[cnn]"],
    )
    _assert_rises(result, "bleu_4", 0.1, "captioning")


def test_a_finetuning_recipe_takes_the_base_recipe_but_not_its_run_folder(tiny_export):
    base = resolve_recipe({"init_from": str(tiny_export)})
    saved = (tiny_export / "1/assets.extra/recipe.yaml").read_text()
    assert "run:\n  dir: runs\n" not in saved  # the session trained it elsewhere
    assert base["run"]["dir"] == "runs" and base["name"] == "tiny"
    assert base["export"]["dir"] == str(tiny_export.parent.resolve())
    assert base["model"]["decoder"]["units"] == 16
    # A data section that names no data adjusts the base's; one that does replaces it.
    adjusted = resolve_recipe({"init_from": str(tiny_export), "data": {"validation_size": 7}})
    assert adjusted["data"]["kind"] == "synthetic" and adjusted["data"]["size"] == 300
    assert adjusted["data"]["validation_size"] == 7
    tsv = write_shifted_translation(tiny_export.parent / "x.tsv", 3)
    replaced = resolve_recipe(
        {"init_from": str(tiny_export), "data": {"path": str(tsv), "kind": "tsv"}}
    )
    assert replaced["data"]["size"] == 20000  # the default, not the base's 300
    from zoo.config import run_folder

    assert run_folder(base) == Path("runs/tiny-finetune")


def test_zoo_evaluate_scores_every_tree_of_a_treebank_folder(trained_parsing, tmp_path, capsys):
    folder = write_shifted_treebank(tmp_path / "trees", {"a": 4, "b": 3})
    export = Path(trained_parsing[1]["export_dir"])
    output = tmp_path / "parsing.json"
    code = cli.main(["evaluate", str(export), "--data", str(folder), "--output", str(output)])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads(output.read_text())
    assert metrics["examples"] == 7 and metrics["split"] == "all"
    assert metrics["well_formed"] == 100.0 and 0 <= metrics["f1"] <= 100
