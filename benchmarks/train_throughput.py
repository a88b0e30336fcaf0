"""Training throughput, in target tokens per second (padding excluded).

Translation (a recipe):

    python benchmarks/train_throughput.py recipes/translation.yaml
    python benchmarks/train_throughput.py recipes/translation.yaml --set model.decoder.units=256 --steps 60
    python benchmarks/train_throughput.py recipes/translation.yaml --tutorial-reference

`--tutorial-reference` times, on the same data and machine, a model shaped
like the TensorFlow NMT tutorial's (BiGRU 256 encoder, GRU 256 decoder, one
head of cross attention over the decoder outputs, no input feeding, batch 64,
batches padded to their longest sentence). It is written here from that
description, so the two figures compare like with like.

Captioning (no recipe; synthetic cached image features):

    python benchmarks/train_throughput.py --captioning
    python benchmarks/train_throughput.py --captioning --steps 20 --warmup 3 \
        --batch-size 64 --units 512 --vocab 5000 --features 64x2048

`--captioning` times three models on the same seeded synthetic batches at the
size of the TensorFlow image-captioning tutorial (cached InceptionV3 features
64x2048, embedding 256, GRU 512, attention 512, vocabulary 5000, batch 64):
random float features, captions of 8 + Poisson(2.5) words (clipped to 8..20;
mean about 10.5 words, like COCO's), `[START] w_1 .. w_n` in and
`w_1 .. w_n [END]` out, ids in [4, vocab), each batch padded with 0 to its
longest caption. Each model is trained with `train_on_batch`, Adam and
`MaskedSparseCrossentropy` (`jit_compile=False`: XLA cannot compile the
scan), `--warmup` untimed steps first; the timed steps are interleaved, two
steps of each model in turn, so that the load of a shared machine drifting
during the run weighs on the three alike:

- zoo `Captioner`: the Show-Attend-Tell LSTM decoder working on the raw
  2048-d features; its attention keys are computed once per image
  (`prepare_memory`) and the decoder steps run under `keras.ops.scan`. It
  is the paper's model, not the tutorial's (LSTM on [word; 2048-d context],
  gate, deep output, init state from the mean feature, doubly stochastic
  penalty), so it does more work per step than the tutorial's.
- tutorial-shaped, per-step projection: written here from the tutorial's
  description: `Dense(--encoder-units) + relu` on the features (the
  tutorial's CNN_Encoder `fc`, whose width is the embedding size, 256),
  then per word Bahdanau attention `V(tanh(W1(features) + W2(hidden)))`
  with `W1(features)` recomputed at every decoder step (inside the loop, as
  the tutorial's `decoder(x, features, hidden)` does), a GRU cell on
  [context; embedded word], `Dense(units)` then `Dense(vocab)`, teacher
  forced over the caption in a `keras.ops.scan`. (The tutorial's GRU starts
  from zeros at each call and sees `hidden` only through the attention;
  here the GRU cell carries its state, which costs the same.)
- tutorial-shaped, projection once per image: the same model with
  `W1(features)` hoisted out of the loop; every other op is identical, so
  the ratio of the two figures is the effect of projecting once per image.

Each prints target tokens/s (real tokens: padding positions are computed but
not counted), ms per training step (mean, which the tokens/s figure uses, and
median: a gap between them means the machine's load varied), parameters, and the training loss of its
first step (warmup included) and of its last. (The word ids are random: the
loss cannot fall much below about 8 nats, the entropy of uniform words with
one end token per caption; the Captioner's loss includes its doubly
stochastic attention penalty.) An analytic count of forward multiply-adds
(MACs; training costs about 3x forward for every matmul alike, so the shares
hold) splits the tutorial-shaped decoder step into the `W1(features)`
projection and the rest, and prints the share the per-step re-projection
takes of the decoder step, and of all the model's work per real target
token once the per-image encoder `fc` and the padding steps are counted;
the elementwise work (tanh, softmax, their gradients, the optimizer) is not
counted, so the measured gain of projecting once is below the MAC ratio.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from zoo.config import load_recipe  # noqa: E402
from zoo.data.seq2seq_dataset import make_seq2seq_dataset  # noqa: E402
from zoo.models import Captioner, MaskedSparseCrossentropy  # noqa: E402
from zoo.tasks import translation  # noqa: E402

START_ID, END_ID, FIRST_WORD_ID = 2, 3, 4


def tutorial_shaped_model(source_vocab: int, target_vocab: int, units: int = 256) -> keras.Model:
    """BiGRU encoder, GRU decoder, one-head cross attention after the decoder RNN."""
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    x = keras.layers.Embedding(source_vocab, units, mask_zero=True)(source)
    memory = keras.layers.Bidirectional(
        keras.layers.GRU(units, return_sequences=True), merge_mode="sum"
    )(x)
    y = keras.layers.Embedding(target_vocab, units, mask_zero=True)(target_in)
    y = keras.layers.GRU(units, return_sequences=True)(y)
    attended = keras.layers.MultiHeadAttention(num_heads=1, key_dim=units)(query=y, value=memory)
    y = keras.layers.LayerNormalization()(keras.layers.Add()([y, attended]))
    logits = keras.layers.Dense(target_vocab)(y)
    return keras.Model({"source": source, "target_in": target_in}, logits)


class TutorialShapedCaptioner(keras.Model):
    """The TF captioning tutorial's model: encoder `fc`, Bahdanau attention, GRU decoder.

    `hoist_projection=False` recomputes the attention's `W1(features)` at every
    decoder step, inside the loop, as the tutorial does; `True` computes it
    once per image before the loop. Nothing else differs.
    Inputs `{"features": (B, L, D), "caption_in": (B, T)}` -> logits `(B, T, vocab)`.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 256,
        units: int = 512,
        encoder_units: int = 256,
        hoist_projection: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.units = units
        self.hoist_projection = hoist_projection
        self.fc = keras.layers.Dense(encoder_units, activation="relu", name="encoder_fc")
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.W1 = keras.layers.Dense(units, name="W1")
        self.W2 = keras.layers.Dense(units, name="W2")
        self.V = keras.layers.Dense(1, name="V")
        self.cell = keras.layers.GRUCell(units, recurrent_initializer="glorot_uniform", name="gru")
        self.fc1 = keras.layers.Dense(units, name="fc1")
        self.fc2 = keras.layers.Dense(vocab_size, name="fc2")
        self._encoder_units = encoder_units
        self._embedding_dim = embedding_dim

    def build(self, input_shape):
        features_shape = tuple(input_shape["features"])
        self.fc.build(features_shape)
        self.embedding.build((None, None))
        self.W1.build((None, None, self._encoder_units))
        self.W2.build((None, self.units))
        self.V.build((None, None, self.units))
        self.cell.build((None, self._encoder_units + self._embedding_dim))
        self.fc1.build((None, self.units))
        self.fc2.build((None, self.units))
        self.built = True

    def call(self, inputs, training=None):
        features = self.fc(inputs["features"])  # (B, L, F)
        embedded = ops.transpose(self.embedding(inputs["caption_in"]), (1, 0, 2))  # (T, B, E)
        batch = ops.shape(features)[0]
        hidden0 = ops.zeros((batch, self.units), dtype=features.dtype)
        logits0 = ops.zeros((batch, self.vocab_size), dtype=features.dtype)
        hoisted_keys = self.W1(features) if self.hoist_projection else None

        def body(carry, word):
            hidden = carry[0]
            keys = hoisted_keys if self.hoist_projection else self.W1(features)
            score = self.V(ops.tanh(keys + ops.expand_dims(self.W2(hidden), 1)))  # (B, L, 1)
            weights = ops.softmax(score, axis=1)
            context = ops.sum(weights * features, axis=1)  # (B, F)
            hidden, _ = self.cell(ops.concatenate([context, word], -1), [hidden])
            logits = self.fc2(self.fc1(hidden))
            # scan (TF backend) keeps only outputs shaped exactly like the carry.
            return (hidden, logits), (hidden, logits)

        _, (_, logits) = ops.scan(body, (hidden0, logits0), embedded)
        return ops.transpose(logits, (1, 0, 2))


def measure(model, dataset, steps: int, warmup: int) -> dict:
    batches = iter(dataset.repeat())
    for _ in range(warmup):  # tracing, one trace per bucket shape at most
        x, y = next(batches)
        model.train_on_batch(x, y)
    tokens = padded = 0
    started = time.perf_counter()
    for _ in range(steps):
        x, y = next(batches)
        model.train_on_batch(x, y)
        tokens += int(np.count_nonzero(y.numpy()))
        padded += int(np.prod(y.shape))
    seconds = time.perf_counter() - started
    return {
        "tokens_per_second": tokens / seconds,
        "padding_share": 1 - tokens / padded,
        "seconds": seconds,
        "steps": steps,
    }


def measure_interleaved(models: dict, batches: list, steps: int, warmup: int, chunk: int = 2):
    """Times `train_on_batch` for several models on the same batches, interleaved.

    Each model first trains on `batches[:warmup]` untimed (tracing), then on
    the `steps` batches after them, `chunk` steps per model in turn (the
    model order rotating every round), so that the load of a shared machine
    drifting during the run weighs on every model alike.

    Returns `{name: {"seconds", "step_seconds", "tokens", "padded", "losses"}}`,
    `losses` holding the training loss of every step, warmup steps first.
    """
    results = {
        name: {"seconds": 0.0, "step_seconds": [], "tokens": 0, "padded": 0, "losses": []}
        for name in models
    }
    for name, model in models.items():
        for x, y in batches[:warmup]:
            results[name]["losses"].append(model.train_on_batch(x, y))
    timed = batches[warmup : warmup + steps]
    names = list(models)
    for round_, start in enumerate(range(0, len(timed), chunk)):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            result = results[name]
            for x, y in timed[start : start + chunk]:
                started = time.perf_counter()
                loss = models[name].train_on_batch(x, y)  # returns numpy: the step is done
                seconds = time.perf_counter() - started
                result["seconds"] += seconds
                result["step_seconds"].append(seconds)
                result["losses"].append(loss)
                result["tokens"] += int(np.count_nonzero(np.asarray(y)))
                result["padded"] += int(np.prod(y.shape))
    for result in results.values():
        result["losses"] = [float(np.ravel(loss)[0]) for loss in result["losses"]]
    return results


def translation_main(args) -> None:
    recipe = load_recipe(args.recipe, args.set)
    keras.utils.set_random_seed(recipe["train"]["seed"])
    splits = translation.load_splits(recipe["data"])
    source_tokenizer = translation.build_tokenizer(
        [p.source for p in splits.train], recipe["tokenizer"]
    )
    target_tokenizer = translation.build_tokenizer(
        [p.target for p in splits.train], recipe["tokenizer"]
    )
    source_ids = translation.tokenize_all(source_tokenizer, [p.source for p in splits.train])
    target_ids = translation.tokenize_all(target_tokenizer, [p.target for p in splits.train])
    train = recipe["train"]
    dataset = make_seq2seq_dataset(
        source_ids,
        target_ids,
        batch_size=train["batch_size"],
        batch_tokens=train["batch_tokens"],
        bucket_boundaries=train["bucket_boundaries"],
        reverse_source=recipe["model"]["reverse_source"],
    )
    model = translation.build_model(
        recipe["model"], source_tokenizer.vocab_size, target_tokenizer.vocab_size
    )
    translation.compile_model(model, train)
    m = recipe["model"]
    print(
        f"machine: {os.cpu_count()} CPUs; TensorFlow {tf.__version__}, Keras {keras.__version__}\n"
        f"recipe: {args.recipe} {' '.join(args.set)}\n"
        f"zoo model: encoder {m['encoder']['cell']} {m['encoder']['units']}x{2 if m['encoder']['bidirectional'] else 1}, "
        f"attention {m['attention']['kind']} {m['attention']['units']}, decoder {m['decoder']['cell']} "
        f"{m['decoder']['units']} ({m['decoder']['style']}), batch {train['batch_size']}"
        f"{', batch_tokens ' + str(train['batch_tokens']) if train['batch_tokens'] else ''}, "
        f"buckets {train['bucket_boundaries']}, {model.count_params():,} parameters"
    )
    steps = 80 if args.steps is None else args.steps
    warmup = 20 if args.warmup is None else args.warmup
    ours = measure(model, dataset, steps, warmup)
    print(
        f"zoo: {ours['tokens_per_second']:,.0f} target tokens/s "
        f"(padding {ours['padding_share']:.1%} of positions, {ours['steps']} steps in {ours['seconds']:.1f} s)"
    )
    if args.tutorial_reference:
        reference = tutorial_shaped_model(source_tokenizer.vocab_size, target_tokenizer.vocab_size)
        reference.compile(optimizer="adam", loss=MaskedSparseCrossentropy(), jit_compile=False)
        plain = make_seq2seq_dataset(source_ids, target_ids, batch_size=64)
        result = measure(reference, plain, steps, warmup)
        print(
            f"tutorial-shaped reference: {result['tokens_per_second']:,.0f} target tokens/s "
            f"(padding {result['padding_share']:.1%}, {reference.count_params():,} parameters)"
        )


# --- captioning ------------------------------------------------------------------


def synthetic_caption_batches(
    count: int, batch_size: int, locations: int, depth: int, vocab: int, seed: int
) -> list:
    """`count` seeded batches `({"features", "caption_in"}, caption_out)` as tensors.

    Captions have 8 + Poisson(2.5) words, clipped to 8..20 (mean about 10.5,
    like COCO's); each batch is padded with 0 to its longest caption. The
    features of at most 8 distinct arrays are cycled (their values do not
    change the work; this bounds memory).
    """
    rng = np.random.default_rng(seed)
    pool = [
        tf.constant(rng.standard_normal((batch_size, locations, depth), dtype=np.float32))
        for _ in range(min(count, 8))
    ]
    batches = []
    for i in range(count):
        words = np.clip(8 + rng.poisson(2.5, size=batch_size), 8, 20)
        steps = int(words.max()) + 1  # [START] w_1..w_n in, w_1..w_n [END] out
        caption_in = np.zeros((batch_size, steps), dtype=np.int32)
        caption_out = np.zeros((batch_size, steps), dtype=np.int32)
        for row, n in enumerate(words):
            ids = rng.integers(FIRST_WORD_ID, vocab, size=n, dtype=np.int32)
            caption_in[row, : n + 1] = np.concatenate([[START_ID], ids])
            caption_out[row, : n + 1] = np.concatenate([ids, [END_ID]])
        x = {"features": pool[i % len(pool)], "caption_in": tf.constant(caption_in)}
        batches.append((x, tf.constant(caption_out)))
    return batches


class ProjectedCaptioner(keras.Model):
    """zoo's `Captioner` behind the tutorial's encoder `fc`: features -> Dense(relu) once per image.

    What `CNNEncoder(projection_dim=...)` does in a recipe (there without the
    relu), so the decoder attends over the same 256-d vectors as the
    tutorial's model.
    """

    def __init__(self, encoder_units: int, **captioner_kwargs):
        super().__init__()
        self.fc = keras.layers.Dense(encoder_units, activation="relu", name="encoder_fc")
        self.captioner = Captioner(None, **captioner_kwargs)

    def build(self, input_shape):
        features = input_shape["features"]
        self.fc.build(features)
        self.captioner.build(
            {
                "features": (*features[:-1], self.fc.units),
                "caption_in": input_shape["caption_in"],
            }
        )
        self.built = True

    def call(self, inputs, training=None):
        features = self.fc(inputs["features"])
        return self.captioner(
            {"features": features, "caption_in": inputs["caption_in"]}, training=training
        )


def tutorial_macs(
    locations: int, depth: int, encoder_units: int, embedding_dim: int, units: int, vocab: int
) -> dict:
    """Forward multiply-adds of the tutorial-shaped model, per decoder step and per image."""
    L, D, F, E, U, V = locations, depth, encoder_units, embedding_dim, units, vocab
    return {
        "projection": L * F * U,  # W1(features): per step when recomputed, else per image
        "step": {
            "W2(hidden)": U * U,
            "V(tanh(.))": L * U,
            "context": L * F,
            "GRU": 3 * (F + E) * U + 3 * U * U,
            "fc1": U * U,
            "fc2 (logits)": U * V,
        },
        "encoder_fc": L * D * F,  # per image
    }


def captioner_macs(locations: int, depth: int, embedding_dim: int, units: int, vocab: int) -> dict:
    """Forward multiply-adds of zoo's Captioner (gate, deep output with context)."""
    L, D, E, U, V = locations, depth, embedding_dim, units, vocab
    step = U * U + L * U + L * D + U + 4 * (E + D) * U + 4 * U * U + U * E + D * E + E * V
    return {"step": step, "per_image": L * D * U + 2 * D * U}  # keys U a; init_h, init_c


def captioning_main(args) -> None:
    locations, depth = (int(n) for n in args.features.lower().split("x"))
    steps = 20 if args.steps is None else args.steps
    warmup = 3 if args.warmup is None else args.warmup
    embedding_dim, vocab, units = args.embedding_dim, args.vocab, args.units
    batches = synthetic_caption_batches(
        warmup + steps, args.batch_size, locations, depth, vocab, args.seed
    )
    timed = batches[warmup:]
    real = sum(int(np.count_nonzero(np.asarray(y))) for _, y in timed)
    positions = sum(int(np.prod(y.shape)) for _, y in timed)
    captions = len(timed) * args.batch_size
    print(
        f"machine: {os.cpu_count()} CPUs; TensorFlow {tf.__version__}, Keras {keras.__version__}\n"
        f"captioning, synthetic: features {locations}x{depth}, batch {args.batch_size}, "
        f"vocab {vocab}, embedding {embedding_dim}, units {units}; timed batches: "
        f"{real / captions:.1f} target tokens per caption, padded to "
        f"{positions / captions:.1f} steps (padding {1 - real / positions:.1%}); "
        f"{steps} timed steps after {warmup} warmup"
    )

    def build(model):
        model.compile(optimizer="adam", loss=MaskedSparseCrossentropy(), jit_compile=False)
        x, _ = batches[0]
        model.build({k: tuple(v.shape) for k, v in x.items()})
        return model

    models = [
        (
            "zoo Captioner (LSTM, keys once per image)",
            lambda: Captioner(
                None,
                vocab_size=vocab,
                embedding_dim=embedding_dim,
                units=units,
                attention_units=units,
            ),
        ),
        (
            f"zoo Captioner behind the tutorial's fc ({depth} -> {args.encoder_units} once)",
            lambda: ProjectedCaptioner(
                args.encoder_units,
                vocab_size=vocab,
                embedding_dim=embedding_dim,
                units=units,
                attention_units=units,
            ),
        ),
        (
            "tutorial-shaped, W1(features) every step",
            lambda: TutorialShapedCaptioner(
                vocab, embedding_dim, units, args.encoder_units, hoist_projection=False
            ),
        ),
        (
            "tutorial-shaped, W1(features) once per image",
            lambda: TutorialShapedCaptioner(
                vocab, embedding_dim, units, args.encoder_units, hoist_projection=True
            ),
        ),
    ]
    built = {}
    for name, make in models:
        keras.utils.set_random_seed(args.seed)  # same initial weights for both tutorial-shaped
        built[name] = build(make())
    results = measure_interleaved(built, batches, steps, warmup)
    for name, model in built.items():
        result = results[name]
        losses = result["losses"]
        print(
            f"{name}: {result['tokens'] / result['seconds']:,.0f} target tokens/s, "
            f"{1000 * result['seconds'] / steps:,.0f} ms/step "
            f"(median {1000 * np.median(result['step_seconds']):,.0f}), "
            f"{model.count_params():,} parameters; "
            f"loss {losses[0]:.3f} (first step) -> {losses[-1]:.3f} (last)"
            f"{'' if all(np.isfinite(losses)) else ' (NOT FINITE)'}"
        )
    per_step, once = (results[name]["seconds"] for name, _ in models[2:])
    print(f"projecting once per image: {per_step / once:.2f}x the tokens/s of the per-step model")

    # Analytic forward MACs per real target token (padding steps are computed too).
    steps_per_token = positions / real
    captions_per_token = captions / real
    macs = tutorial_macs(locations, depth, args.encoder_units, embedding_dim, units, vocab)
    projection = macs["projection"]
    rest = sum(macs["step"].values())
    encoder = macs["encoder_fc"]
    recomputed = (projection + rest) * steps_per_token + encoder * captions_per_token
    hoisted = rest * steps_per_token + (projection + encoder) * captions_per_token
    ours = captioner_macs(locations, depth, embedding_dim, units, vocab)
    ours_total = ours["step"] * steps_per_token + ours["per_image"] * captions_per_token
    print(
        "analytic forward multiply-adds (tutorial-shaped model; training is about 3x):\n"
        f"  per decoder step: W1(features) {projection / 1e6:.2f}M "
        f"({locations}x{args.encoder_units}x{units}), rest of the step {rest / 1e6:.2f}M ("
        + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in macs["step"].items())
        + ")\n"
        f"  per image: encoder fc {encoder / 1e6:.1f}M ({locations}x{depth}x{args.encoder_units})\n"
        f"  re-projection share of a decoder step: {projection / (projection + rest):.1%}; "
        f"of all work per real token (encoder fc and padding steps counted): "
        f"{projection * steps_per_token / recomputed:.1%}\n"
        f"  per real token: {recomputed / 1e6:.1f}M with the per-step projection, "
        f"{hoisted / 1e6:.1f}M projecting once per image ({recomputed / hoisted:.2f}x fewer); "
        f"zoo Captioner {ours_total / 1e6:.1f}M"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recipe", nargs="?", help="translation recipe (not with --captioning)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed training steps (80; captioning 20)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed steps first, tracing (20; captioning 3)"
    )
    parser.add_argument(
        "--tutorial-reference", action="store_true", help="also time the tutorial-shaped model"
    )
    captioning = parser.add_argument_group("captioning (synthetic features)")
    captioning.add_argument("--captioning", action="store_true", help="time the captioning models")
    captioning.add_argument("--batch-size", type=int, default=64)
    captioning.add_argument("--units", type=int, default=512, help="decoder and attention units")
    captioning.add_argument("--embedding-dim", type=int, default=256)
    captioning.add_argument("--vocab", type=int, default=5000)
    captioning.add_argument("--features", default="64x2048", help="LOCATIONSxDEPTH")
    captioning.add_argument(
        "--encoder-units",
        type=int,
        default=256,
        help="width of the tutorial-shaped encoder fc (the tutorial's: the embedding size, 256)",
    )
    captioning.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.captioning:
        if args.recipe is not None or args.set or args.tutorial_reference:
            parser.error("--captioning takes no recipe, --set or --tutorial-reference")
        captioning_main(args)
    elif args.recipe is None:
        parser.error("a recipe is required (or --captioning)")
    else:
        translation_main(args)


if __name__ == "__main__":
    main()
