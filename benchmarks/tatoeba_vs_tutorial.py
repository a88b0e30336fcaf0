"""Ours against the TensorFlow NMT tutorial's model, trained for the same minutes on Tatoeba.

    python benchmarks/tatoeba_vs_tutorial.py                      # the shipped recipe, 20 minutes each
    python benchmarks/tatoeba_vs_tutorial.py --minutes 5          # a quicker look (both at 5 minutes)
    python benchmarks/tatoeba_vs_tutorial.py --ablation 200       # the loss table of the diagnosis
    python benchmarks/tatoeba_vs_tutorial.py --decoding saved_models/translation_tatoeba/1

Ours is the shipped recipe, run as a user runs it: `zoo run
recipes/translation_tatoeba.yaml` in a subprocess (with `--minutes`, only
`train.max_minutes` is set). Its figures are read from the export's
`metrics.json`: the exported model's own translations of the test split,
scored by sacreBLEU and chrF against the raw references.

The tutorial-shaped model is written here from the description of the
TensorFlow tutorial `nmt_with_attention`: lower-cased, accent-stripped words
(a 5,000-word vocabulary per language), an embedding and a bidirectional
GRU of 256 units (directions summed), a GRU decoder of 256 units whose outputs
query the encoder through one head of dot-product attention, added back and
layer-normalised, a vocabulary layer; Adam at 1e-3, batches of 64 shuffled
pairs padded to their longest sentence, greedy decoding. It trains on the
same training pairs (the recipe's split, same seed) for as many seconds as
ours trained, then translates the same test sentences; its detokenised,
lower-cased output is scored against the same raw references.

Printed, for both: sacreBLEU and chrF (and the normalised scores beside
them), the training seconds, steps and target tokens per second, and a few
translations of the same sentences.

`--ablation STEPS` trains several models on the SAME first STEPS batches of
the recipe's data (one seed, the recipe's tokenizer), changing one thing at a
time, and prints the training loss every 50 steps: this is how the slow
learning of the wave-1 decoder was traced to its tanh output layer and to
input feeding (README, "Real text").

`--decoding EXPORT` decodes the recipe's test split with an export's model
under several decoding settings (greedy, beam, GNMT penalties, n-gram
blocking) and prints sacreBLEU and chrF for each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from zoo.config import load_recipe  # noqa: E402
from zoo.data.seq2seq_dataset import END_ID, START_ID, make_seq2seq_dataset  # noqa: E402
from zoo.metrics.bleu import corpus_bleu, corpus_chrf  # noqa: E402
from zoo.models import MaskedSparseCrossentropy  # noqa: E402
from zoo.tasks.seq2seq.training import build_model, tokenize_all  # noqa: E402
from zoo.tasks.translation.task import build_tokenizer, load_splits  # noqa: E402
from zoo.text import WordTokenizer, normalize_python  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class TutorialShaped(keras.Model):
    """The tutorial's encoder-decoder; `call` is teacher forced, `greedy` decodes."""

    def __init__(self, source_vocab: int, target_vocab: int, units: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.source_embedding = keras.layers.Embedding(source_vocab, units, mask_zero=True)
        self.encoder_rnn = keras.layers.Bidirectional(
            keras.layers.GRU(units, return_sequences=True), merge_mode="sum"
        )
        self.target_embedding = keras.layers.Embedding(target_vocab, units, mask_zero=True)
        self.decoder_rnn = keras.layers.GRU(units, return_sequences=True)
        self.attention = keras.layers.MultiHeadAttention(num_heads=1, key_dim=units)
        self.norm = keras.layers.LayerNormalization()
        self.logits = keras.layers.Dense(target_vocab)

    def encode(self, source, training=None):
        mask = ops.not_equal(source, 0)
        return self.encoder_rnn(self.source_embedding(source), mask=mask, training=training), mask

    def decode(self, memory, mask, target_in, training=None):
        y = self.decoder_rnn(self.target_embedding(target_in), training=training)
        attended = self.attention(
            query=y, value=memory, attention_mask=ops.expand_dims(mask, 1), training=training
        )
        return self.logits(self.norm(y + attended))

    def call(self, inputs, training=None):
        memory, mask = self.encode(inputs["source"], training=training)
        return self.decode(memory, mask, inputs["target_in"], training=training)


def greedy_translate(model, source_tokenizer, target_tokenizer, texts, max_length=50):
    """Greedy decoding, re-running the decoder over the prefix at each step (the tutorial's loop)."""
    decode = tf.function(
        lambda m, k, t: model.decode(m, k, t, training=False), reduce_retracing=True
    )
    encode = tf.function(lambda s: model.encode(s, training=False), reduce_retracing=True)
    out = []
    for start in range(0, len(texts), 128):
        ids = source_tokenizer.tokenize(tf.constant(texts[start : start + 128]))
        source = ids.to_tensor(0)
        source = tf.concat([source, tf.fill([tf.shape(source)[0], 1], END_ID)], 1)
        memory, mask = encode(source)
        tokens = np.full((source.shape[0], 1), START_ID, np.int32)
        done = np.zeros(source.shape[0], bool)
        for _ in range(max_length):
            logits = decode(memory, mask, tf.constant(tokens))
            nxt = np.argmax(logits[:, -1].numpy(), -1).astype(np.int32)
            nxt[done] = 0
            done |= nxt == END_ID
            tokens = np.concatenate([tokens, nxt[:, None]], 1)
            if done.all():
                break
        rows = []
        for row in tokens[:, 1:]:
            row = list(row)
            rows.append(row[: row.index(END_ID)] if END_ID in row else row)
        ragged = tf.ragged.constant(rows, dtype=tf.int32, inner_shape=())
        out.extend(t.decode("utf-8") for t in target_tokenizer.detokenize(ragged).numpy())
    return out


def run_ours(recipe_path: str, minutes: float | None, workdir: Path) -> dict:
    """`zoo run` the recipe as a user does; returns the export's metrics.json."""
    command = [sys.executable, "-m", "zoo.cli", "run", recipe_path]
    command += ["--set", f"export.dir={workdir / 'saved_models'}", "--set", f"run.dir={workdir}"]
    if minutes:
        command += ["--set", f"train.max_minutes={minutes}"]
    print("ours:", " ".join(command), flush=True)
    log = workdir / "zoo_run.log"
    with open(log, "w", encoding="utf-8") as f:
        subprocess.run(command, check=True, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    metrics_files = sorted((workdir / "saved_models").glob("*/*/assets.extra/metrics.json"))
    return json.loads(metrics_files[-1].read_text(encoding="utf-8"))


def run_tutorial(recipe: dict, splits, seconds: float, seed: int = 0) -> dict:
    keras.utils.set_random_seed(seed)
    train = splits.train
    source_tokenizer = WordTokenizer.build([p.source for p in train], 5000)
    target_tokenizer = WordTokenizer.build([p.target for p in train], 5000)
    source_ids = tokenize_all(source_tokenizer, [p.source for p in train])
    target_ids = tokenize_all(target_tokenizer, [p.target for p in train])
    data = make_seq2seq_dataset(source_ids, target_ids, batch_size=64, seed=seed).repeat()
    model = TutorialShaped(source_tokenizer.vocab_size, target_tokenizer.vocab_size)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=MaskedSparseCrossentropy(), jit_compile=False
    )
    steps = tokens = 0
    started = time.time()
    last = started
    for x, y in data:
        loss = model.train_on_batch(x, y)
        steps += 1
        tokens += int(np.count_nonzero(y.numpy()))
        if time.time() - last > 60:
            last = time.time()
            print(
                f"  tutorial-shaped: {steps} steps, {last - started:.0f} s, "
                f"loss {float(np.ravel(loss)[0]):.3f}",
                flush=True,
            )
        if time.time() - started >= seconds:
            break
    train_seconds = time.time() - started
    sources = [p.source for p in splits.test]
    t0 = time.time()
    hypotheses = greedy_translate(model, source_tokenizer, target_tokenizer, sources)
    return {
        "hypotheses": hypotheses,
        "train_seconds": train_seconds,
        "steps": steps,
        "tokens_per_second": tokens / train_seconds,
        "decode_seconds": time.time() - t0,
    }


def scores(hypotheses, references) -> dict:
    norm_h = [normalize_python(h) for h in hypotheses]
    norm_r = [normalize_python(r) for r in references]
    return {
        "bleu": corpus_bleu(hypotheses, references),
        "chrf": corpus_chrf(hypotheses, references),
        "bleu_normalized": corpus_bleu(norm_h, norm_r),
        "chrf_normalized": corpus_chrf(norm_h, norm_r),
    }


def compare(args) -> None:
    recipe = load_recipe(args.recipe)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="tatoeba_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    ours = run_ours(args.recipe, args.minutes, workdir)
    print(f"ours: done in {time.time() - started:.0f} s (log: {workdir / 'zoo_run.log'})")
    splits = load_splits(recipe["data"])
    seconds = ours["train_seconds"]
    print(f"tutorial-shaped: training for {seconds:.0f} s, as long as ours trained", flush=True)
    tutorial = run_tutorial(recipe, splits, seconds, recipe["train"]["seed"])
    references = [p.target for p in splits.test]
    tut = scores(tutorial["hypotheses"], references)
    rows = [
        ("sacreBLEU (raw references)", f"{ours['bleu']:.2f}", f"{tut['bleu']:.2f}"),
        ("chrF (raw references)", f"{ours['chrf']:.2f}", f"{tut['chrf']:.2f}"),
        (
            "sacreBLEU, both sides normalised",
            f"{ours['bleu_normalized']:.2f}",
            f"{tut['bleu_normalized']:.2f}",
        ),
        (
            "chrF, both sides normalised",
            f"{ours['chrf_normalized']:.2f}",
            f"{tut['chrf_normalized']:.2f}",
        ),
        ("training seconds", f"{ours['train_seconds']:.0f}", f"{tutorial['train_seconds']:.0f}"),
        (
            "target tokens/s",
            f"{ours['tokens_per_second']:,.0f}",
            f"{tutorial['tokens_per_second']:,.0f}",
        ),
        ("test sentences", str(ours["examples"]), str(len(references))),
    ]
    print()
    print(f"Tatoeba {recipe['data']['path']} columns {recipe['data']['columns']}, same split")
    print(f"| {'':34s} | {'ours (recipe)':>14s} | {'tutorial-shaped':>15s} |")
    print(f"|{'-' * 36}|{'-' * 16}|{'-' * 17}|")
    for name, a, b in rows:
        print(f"| {name:34s} | {a:>14s} | {b:>15s} |")
    ratio = ours["bleu"] / max(tut["bleu"], 1e-9)
    print(f"\nours / tutorial-shaped sacreBLEU: {ratio:.2f}x (target: at least 1.3x)")
    print("\nsamples (source / reference / ours / tutorial-shaped):")
    ours_by_source = {s["source"]: s["translation"] for s in ours.get("samples", [])}
    for i, pair in enumerate(splits.test[: args.samples]):
        print(f"  src: {pair.source}\n  ref: {pair.target}")
        if pair.source in ours_by_source:
            print(f"  ours: {ours_by_source[pair.source]}")
        print(f"  tutorial: {tutorial['hypotheses'][i]}")


# --- the ablation: one change at a time, same batches ------------------------------------
ABLATIONS = {
    "wave 1 decoder (Luong input feeding, tanh output)": {},
    "  dropout 0": {"decoder.dropout": 0.0, "encoder.dropout": 0.0},
    "  embeddings 256": {"embedding_dim": 256},
    "  no attention": {"attention.kind": "none"},
    "  Bahdanau wiring, tanh output": {"decoder.style": "bahdanau"},
    "  Luong input feeding, LayerNorm output": {"decoder.output": "layernorm"},
    "Bahdanau wiring, LayerNorm output": {
        "decoder.style": "bahdanau",
        "decoder.output": "layernorm",
    },
    "  + embeddings 256, dropout 0.1 (the recipe's model)": {"recipe": True},
    "  the recipe's model at learning rate 0.001": {"recipe": True, "learning_rate": 0.001},
}


def ablation(args) -> None:
    recipe = load_recipe(args.recipe)
    keras.utils.set_random_seed(0)
    splits = load_splits(recipe["data"])
    source = build_tokenizer([p.source for p in splits.train], recipe["tokenizer"])
    target = build_tokenizer([p.target for p in splits.train], recipe["tokenizer"])
    source_ids = tokenize_all(source, [p.source for p in splits.train])
    target_ids = tokenize_all(target, [p.target for p in splits.train])
    data = make_seq2seq_dataset(
        source_ids,
        target_ids,
        batch_size=recipe["train"]["batch_size"],
        bucket_boundaries=recipe["train"]["bucket_boundaries"],
        seed=0,
    )
    batches = list(data.take(args.ablation))
    base = dict(recipe["model"])
    base["embedding_dim"] = 128
    base["encoder"] = {**base["encoder"], "dropout": 0.2}
    base["decoder"] = {**base["decoder"], "style": "luong", "output": "tanh", "dropout": 0.2}
    print(f"{args.ablation} steps on the same batches, Adam {recipe['train']['learning_rate']}")
    models = {"tutorial-shaped": None, **ABLATIONS}
    for name, change in models.items():
        keras.utils.set_random_seed(1)
        learning_rate = recipe["train"]["learning_rate"]
        if change is None:
            model = TutorialShaped(source.vocab_size, target.vocab_size)
        elif change.get("recipe"):
            learning_rate = change.get("learning_rate", learning_rate)
            model = build_model(recipe["model"], source.vocab_size, target.vocab_size)
        else:
            config = json.loads(json.dumps(base))
            for key, value in change.items():
                section, _, field = key.rpartition(".")
                (config[section] if section else config)[field] = value
            model = build_model(config, source.vocab_size, target.vocab_size)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=MaskedSparseCrossentropy(),
            jit_compile=False,
        )
        t0 = time.time()
        losses = [float(np.ravel(model.train_on_batch(x, y))[0]) for x, y in batches]
        by_50 = " ".join(f"{np.mean(losses[i : i + 50]):.2f}" for i in range(0, len(losses), 50))
        print(
            f"{name:56s} lr {learning_rate:g} {time.time() - t0:5.0f} s  loss by 50 steps: {by_50}",
            flush=True,
        )


DECODINGS = {
    "greedy": {"beam_size": 1, "coverage_penalty": 0.0, "no_repeat_ngram": 0},
    "beam 4, alpha 0": {"beam_size": 4, "length_penalty": 0.0, "coverage_penalty": 0.0},
    "beam 4, alpha 0.6": {"beam_size": 4, "coverage_penalty": 0.0, "no_repeat_ngram": 0},
    "  + coverage beta 0.2": {"beam_size": 4, "coverage_penalty": 0.2, "no_repeat_ngram": 0},
    "  + no repeated 3-gram": {"beam_size": 4, "coverage_penalty": 0.0, "no_repeat_ngram": 3},
    "  + both (the recipe)": {"beam_size": 4, "coverage_penalty": 0.2, "no_repeat_ngram": 3},
}


def decoding(args) -> None:
    from zoo.finetune import load_base
    from zoo.tasks.base import traced
    from zoo.tasks.translation.task import Translator, evaluate

    base = load_base(args.decoding)
    recipe = load_recipe(Path(args.decoding) / "assets.extra" / "recipe.yaml")
    splits = load_splits(recipe["data"])
    print(f"{len(splits.test)} test sentences, the model of {args.decoding}")
    for name, change in DECODINGS.items():
        decode = {**recipe["decode"], "no_repeat_ngram": 0, **change}
        serving = Translator(
            base.model,
            base.tokenizers["source"],
            base.tokenizers["target"],
            {**recipe, "decode": decode},
        )
        metrics = evaluate(
            base.model,
            serving,
            splits.test,
            recipe["evaluate"],
            translate_fn=traced(serving, "translate_text"),
        )
        print(
            f"{name:26s} sacreBLEU {metrics['bleu']:6.2f}  chrF {metrics['chrf']:6.2f}  "
            f"({metrics['sentences_per_second']:.0f} sentences/s)",
            flush=True,
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes" / "translation_tatoeba.yaml"))
    parser.add_argument("--minutes", type=float, default=None, help="default: the recipe's")
    parser.add_argument("--workdir", default=None, help="where ours runs and exports")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--ablation", type=int, default=0, metavar="STEPS")
    parser.add_argument("--decoding", default=None, metavar="EXPORT")
    args = parser.parse_args(argv)
    if args.decoding:
        decoding(args)
    elif args.ablation:
        ablation(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
