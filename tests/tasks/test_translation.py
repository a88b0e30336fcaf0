"""End to end: a tiny translation recipe trains, evaluates, exports, reloads and serves."""

import json
from pathlib import Path

import pytest

from tests.tasks.processes import call_zoo, run_zoo
from zoo import runner
from zoo.config import resolve_recipe

TINY = {
    "task": "translation",
    "name": "tiny",
    "data": {
        "kind": "synthetic",
        "size": 300,
        "validation_size": 20,
        "test_size": 20,
        "max_words": 12,
    },
    "tokenizer": {"vocab_size": 600},
    "model": {
        "embedding_dim": 16,
        "encoder": {"units": 16},
        "attention": {"kind": "additive", "units": 16},
        "decoder": {"units": 16},
    },
    "train": {"batch_size": 32, "epochs": 1},
    "decode": {"beam_size": 2, "max_length": 20},
}


@pytest.fixture(scope="module")
def trained(trained_translation):
    return trained_translation


def test_run_reports_metrics_and_exports_serving_layout(trained):
    recipe, result, logs = trained
    export = Path(result["export_dir"])
    assert export.name == "1" and export.parent.name == "tiny"
    assert (export / "saved_model.pb").is_file() and (export / "variables").is_dir()
    extra = export / "assets.extra"
    for name in (
        "recipe.yaml",
        "model.keras",
        "metrics.json",
        "source_vocab.txt",
        "target_vocab.txt",
    ):
        assert (extra / name).is_file(), name
    metrics = json.loads((extra / "metrics.json").read_text())
    assert metrics["examples"] == 20
    assert 0.0 <= metrics["bleu"] <= 100.0 and 0.0 <= metrics["alignment_error_rate"] <= 1.0
    assert [b["bucket"] for b in metrics["bleu_by_length"]][:2] == ["1-10", "11-20"]
    assert any(line.startswith("test: sacreBLEU") for line in logs)
    assert not [p for p in export.parent.iterdir() if p.name.startswith(".partial")]


def test_zoo_load_translates_with_attention_and_options(trained):
    import numpy as np

    import zoo

    _, result, _ = trained
    model = zoo.load(Path(result["export_dir"]).parent)
    assert model.task == "translation"
    out = model.translate(["the dog saw a cat .", "the old king sleeps ."])
    assert len(out) == 2
    for r in out:
        assert r.attention.shape == (len(r.tokens), len(r.source_tokens))
        assert r.source_tokens[-1] == "[END]"
        if r.tokens:
            np.testing.assert_allclose(r.attention.sum(-1), 1.0, rtol=1e-4)
    short = model.translate("the dog saw a cat .", beam_size=1, max_length=3)
    assert len(short.tokens) <= 3


def test_empty_input_translates_to_empty_string(trained):
    import zoo

    _, result, _ = trained
    model = zoo.load(result["export_dir"])
    empty, blank, real = model.translate(["", "   ", "the dog sleeps ."])
    assert empty.text == "" and blank.text == "" and empty.tokens == [] and empty.score == 0.0
    assert " ".join(real.source_tokens[:-1]).replace(" ##", "") == "the dog sleeps ."


def test_export_is_atomic_and_never_overwrites(trained, tmp_path):
    import tensorflow as tf

    from zoo.export import atomic_export, existing_versions

    module = tf.Module()
    module.v = tf.Variable(1.0)

    def broken(path):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_export(module, tmp_path / "m", signatures={}, extras={"x": broken})
    assert list((tmp_path / "m").iterdir()) == []
    atomic_export(module, tmp_path / "m", signatures={}, extras={})
    atomic_export(module, tmp_path / "m", signatures={}, extras={})
    assert existing_versions(tmp_path / "m") == [1, 2]
    with pytest.raises(FileExistsError, match="never overwritten"):
        atomic_export(module, tmp_path / "m", signatures={}, extras={}, version=2)


def test_cli_rejects_a_malformed_recipe_before_any_work(tmp_path, capsys, monkeypatch):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("task: translation\nmodel:\n  encoder: {units: big}\ntrain: {epoks: 3}\n")
    proc = call_zoo(capsys, monkeypatch, "run", str(recipe), cwd=tmp_path)
    assert proc.returncode == 2
    assert "model.encoder.units" in proc.stderr and "train.epoks" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_cli_names_a_missing_data_file(tmp_path, capsys, monkeypatch):
    recipe = tmp_path / "tsv.yaml"
    recipe.write_text("task: translation\ndata: {kind: tsv, path: no/such/file.tsv}\n")
    proc = call_zoo(capsys, monkeypatch, "run", str(recipe), cwd=tmp_path)
    assert proc.returncode == 2
    assert "data.path" in proc.stderr and "no/such/file.tsv" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_predict_prints_translation_and_writes_plot(trained, tmp_path):
    _, result, _ = trained
    plot = tmp_path / "attention.png"
    proc = run_zoo(
        "predict",
        result["export_dir"],
        "the dog saw a cat .",
        "--plot",
        str(plot),
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["source"] == "the dog saw a cat ." and isinstance(line["text"], str)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_predict_plot_skips_an_empty_translation(trained, tmp_path, capsys, monkeypatch):
    _, result, _ = trained
    plot = tmp_path / "attention.png"
    proc = call_zoo(
        capsys, monkeypatch, "predict", result["export_dir"], "", "--plot", str(plot), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "\n" and "output is empty" in proc.stderr and not plot.exists()


def test_cli_predict_rejects_a_zero_beam(trained, tmp_path, capsys, monkeypatch):
    _, result, _ = trained
    proc = call_zoo(
        capsys,
        monkeypatch,
        "predict",
        result["export_dir"],
        "a cat .",
        "--beam-size",
        "0",
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "--beam-size must be >= 1" in proc.stderr


def test_existing_export_version_fails_before_training(trained, tmp_path):

    recipe, result, _ = trained
    clash = resolve_recipe(recipe, ["export.version=1"])
    logs = []
    with pytest.raises(FileExistsError, match="export.version"):
        runner.train(clash, log=logs.append)
    assert not any(line.startswith("train:") for line in logs)


def test_a_backup_from_another_recipe_is_discarded(tmp_path):
    from zoo.training import discard_stale_backup

    recipe = resolve_recipe(TINY)
    logs = []
    discard_stale_backup(tmp_path, recipe, logs.append)
    (tmp_path / "backup").mkdir()
    discard_stale_backup(tmp_path, recipe, logs.append)  # same recipe: kept
    assert (tmp_path / "backup").exists() and logs == []
    discard_stale_backup(tmp_path, resolve_recipe(recipe, ["model.decoder.units=32"]), logs.append)
    assert not (tmp_path / "backup").exists() and "different recipe" in logs[0]


def test_cli_predict_names_a_missing_export(tmp_path, capsys, monkeypatch):
    proc = call_zoo(
        capsys, monkeypatch, "predict", str(tmp_path / "nothing"), "hello", cwd=tmp_path
    )
    assert proc.returncode == 2 and "no exported model" in proc.stderr


def test_interrupted_training_resumes_where_it_stopped(tmp_path):
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("power cut")

    recipe = resolve_recipe(
        TINY,
        [
            "train.epochs=3",
            "data.size=120",
            "data.test_size=5",
            "decode.beam_size=1",
            "model.reverse_source=true",
            f"export.dir={tmp_path / 'saved_models'}",
            f"run.dir={tmp_path / 'runs'}",
        ],
    )
    with pytest.raises(KeyboardInterrupt):
        runner.train(recipe, log=lambda _: None, callbacks=[Interrupt()])
    assert not (tmp_path / "saved_models" / "tiny").exists() or not any(
        (tmp_path / "saved_models" / "tiny").iterdir()
    )
    logs = []
    metrics = runner.train(recipe, log=logs.append)["metrics"]
    backup = tmp_path / "runs" / "tiny" / "backup"
    assert f"train: resuming from epoch 2 ({backup})" in logs  # the log says so
    assert metrics["epochs_this_run"] == 2, (
        "epoch 0 was done before the interruption: only 1 and 2 remain"
    )
    assert metrics["epochs"] == 3
    assert 0.0 <= metrics["alignment_error_rate"] <= 1.0  # the reversed-source AER path ran


@pytest.mark.parametrize("kind", ["word", "wordpiece"])
def test_vocabulary_is_built_on_the_pairs_training_keeps(kind):
    """One huge line (dropped by training) must not fill a capped vocabulary with its words."""
    from zoo.data.synthetic_translation import generate_translation_pairs
    from zoo.tasks import get_task
    from zoo.tasks.translation import Pair

    task = get_task("translation")
    recipe = resolve_recipe({"task": "translation", "tokenizer": {"kind": kind, "vocab_size": 80}})
    pairs = [Pair(p.source, p.target) for p in generate_translation_pairs(60, seed=1, max_words=8)]
    huge = Pair(" ".join(f"huge{i}" for i in range(150)), "x")  # > data.max_source_tokens (100)
    # 60 words, but 120 tokens once the commas are split off: known only with a vocabulary.
    commas = Pair(" ".join(f"comma{i}," for i in range(60)), "y")
    logs = []
    with_long = task.build_tokenizers([*pairs[:30], huge, commas, *pairs[30:]], recipe, logs.append)
    without = task.build_tokenizers(pairs, recipe, lambda _: None)
    assert not [w for w in with_long["source"].vocab if "huge" in w or "comma" in w]
    assert with_long["source"].vocab == without["source"].vocab
    assert with_long["target"].vocab == without["target"].vocab
    assert "built on 60 of 62 training pairs: 2 with a source longer than 100" in logs[-1]
