"""Real text: SentencePiece by default on files, cased detokenised output, raw-reference scores,
a training time budget, and fine-tuning that keeps (and cannot extend) a SentencePiece vocabulary."""

import json
from pathlib import Path

import pytest
import tensorflow as tf

from zoo import runner
from zoo.config import resolve_recipe
from zoo.finetune import FinetuneError
from zoo.tasks.translation import Pair
from zoo.tasks.translation.task import evaluate

# A cased, accented toy language pair with punctuation attached to the words.
WORDS = {
    "the cat": "le chat",
    "the dog": "le chien",
    "a bird": "un oiseau",
    "my sister": "ma sœur",
    "the teacher": "l'enseignant",
}
VERBS = {"sees": "voit", "likes": "aime", "follows": "suit"}


def write_cased_tsv(path: Path, size: int) -> Path:
    import random

    rng = random.Random(0)
    lines = []
    subjects, verbs = list(WORDS), list(VERBS)
    for _ in range(size):
        s, o, v = rng.choice(subjects), rng.choice(subjects), rng.choice(verbs)
        mark = rng.choice([".", "!", "?"])
        english = f"{s.capitalize()} {v} {o}{mark}"
        french = (
            f"{WORDS[s].capitalize()} {VERBS[v]} {WORDS[o]}{' ' + mark if mark != '.' else '.'}"
        )
        lines.append(f"{english}\t{french}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _recipe(tmp_path: Path, tsv: Path, *overrides: str) -> dict:
    raw = {
        "task": "translation",
        "name": "cased",
        "data": {"kind": "tsv", "path": str(tsv), "validation_size": 10, "test_size": 10},
        "tokenizer": {"vocab_size": 60},
        "model": {
            "embedding_dim": 16,
            "encoder": {"units": 16},
            "attention": {"kind": "additive", "units": 16},
            "decoder": {"units": 16, "style": "bahdanau", "output": "layernorm"},
        },
        "train": {"batch_size": 16, "epochs": 1},
        "decode": {"beam_size": 2, "max_length": 16, "coverage_penalty": 0.2, "no_repeat_ngram": 3},
        "evaluate": {"alignment": False},
    }
    return resolve_recipe(
        raw,
        [f"export.dir={tmp_path / 'saved_models'}", f"run.dir={tmp_path / 'runs'}", *overrides],
    )


@pytest.fixture(scope="module")
def cased_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("cased")
    tsv = write_cased_tsv(root / "pairs.tsv", 300)
    recipe = _recipe(
        root, tsv, "train.epochs=60", "train.max_minutes=0.05", "train.steps_per_epoch=3"
    )
    logs = []
    result = runner.train(recipe, log=logs.append)
    return root, tsv, recipe, result, logs


def test_files_get_a_sentencepiece_tokenizer_that_keeps_case_and_accents(cased_export):
    _, _, _, result, logs = cased_export
    extra = Path(result["export_dir"]) / "assets.extra"
    configs = json.loads((extra / "tokenizers.json").read_text(encoding="utf-8"))
    assert {c["kind"] for c in configs.values()} == {"sentencepiece"}
    assert configs["source"]["lowercase"] is False
    target = (extra / "target_vocab.txt").read_text(encoding="utf-8")
    assert "œ" in target and "L" in target  # accents and capitals are pieces, not folded away
    assert any(line.startswith("tokenizer: sentencepiece") for line in logs)


def test_the_time_budget_ends_training_and_still_exports(cased_export):
    _, _, _, result, logs = cased_export
    metrics = result["metrics"]
    assert metrics["stopped_by_budget"] is True
    assert metrics["epochs"] < 60  # the budget, not the epochs, ended it
    assert metrics["train_seconds"] < 30
    assert (Path(result["export_dir"]) / "saved_model.pb").is_file()
    assert any("budget ended training" in line for line in logs)
    assert {"bleu", "chrf", "bleu_normalized", "chrf_normalized"} <= set(metrics)


def test_the_export_serves_detokenised_text_from_raw_strings(cased_export):
    import zoo

    _, _, _, result, _ = cased_export
    loaded = zoo.load(result["export_dir"])
    out = loaded.translate(["The cat sees my sister.", ""])
    assert [r.text for r in out][1] == ""
    assert isinstance(out[0].text, str) and "▁" not in out[0].text
    pieces = out[0].source_tokens
    # The reloaded export translates as the model did in training's evaluation
    # (each of its two SentencePiece models kept apart on reload).
    samples = result["metrics"]["samples"]
    again = loaded.translate([x["source"] for x in samples])
    assert [r.text for r in again] == [x["translation"] for x in samples]
    # The source was read as it was written, capital and all: its pieces spell it.
    assert pieces[-1] == "[END]"
    assert "".join(pieces[:-1]).replace("▁", " ").strip() == "The cat sees my sister."


class _Echo:
    """A translate function that writes what it is told to, for the scoring tests."""

    def __init__(self, outputs):
        self.outputs = outputs

    def __call__(self, text):
        n = int(tf.shape(text)[0])
        chunk, self.outputs = self.outputs[:n], self.outputs[n:]
        return {"translation": tf.constant(chunk)}


def test_scores_compare_the_output_with_the_raw_references():
    pairs = [
        Pair("Je suis sûr.", "I'm sure."),
        Pair("Où es-tu ?", "Where are you?"),
        Pair("Il fait très froid aujourd'hui.", "It's very cold today."),
    ]
    config = {"length_buckets": [10, 20], "max_examples": None, "alignment": False}
    exact = evaluate(None, None, pairs, config, translate_fn=_Echo([p.target for p in pairs]))
    assert exact["bleu"] == pytest.approx(100.0) and exact["chrf"] == pytest.approx(100.0)
    # What a lower-casing, punctuation-splitting tokenizer writes: the headline pays for it,
    # the normalised score beside it does not.
    normalised = ["i ' m sure .", "where are you ?", "it ' s very cold today ."]
    lowered = evaluate(None, None, pairs, config, translate_fn=_Echo(normalised))
    assert lowered["bleu"] < 40 and lowered["chrf"] < 90
    assert lowered["bleu_normalized"] == pytest.approx(100.0)
    assert lowered["samples"][0]["reference"] == "I'm sure."


def test_finetune_keeps_a_sentencepiece_vocabulary_and_refuses_to_extend_it(cased_export):
    root, tsv, _, result, _ = cased_export
    export = Path(result["export_dir"]).parent
    data = {"kind": "tsv", "path": str(tsv), "validation_size": 10, "test_size": 10}
    base = {"init_from": str(export), "data": data}
    extend = resolve_recipe(base, [f"run.dir={root / 'runs_ft'}", "finetune.vocab=extend"])
    with pytest.raises(FinetuneError, match=r"sentencepiece.*cannot grow.*finetune.vocab=keep"):
        runner.finetune(extend, log=lambda _: None)
    assert not (export / "2").exists()  # refused before anything was written
    keep = resolve_recipe(
        base, [f"run.dir={root / 'runs_ft'}", "finetune.vocab=keep", "train.max_minutes=0.02"]
    )
    tuned = runner.finetune(keep, log=lambda _: None)
    assert Path(tuned["export_dir"]) == export / "2"
    old = json.loads((export / "1/assets.extra/tokenizers.json").read_text(encoding="utf-8"))
    new = json.loads((export / "2/assets.extra/tokenizers.json").read_text(encoding="utf-8"))
    assert new == old
