"""What the sequence-to-sequence tasks (translation, parsing) share as tasks: model, data, parts."""

from __future__ import annotations

from zoo.config import FinetuneKeys
from zoo.tasks.base import FinetunePolicy, Task
from zoo.tasks.seq2seq.schema import SEQ2SEQ_PARTS


class Seq2SeqTask(Task):
    """A task learned by a `Seq2Seq` between a `source` and a `target` tokenizer.

    Subclasses say how an example becomes a (source, target) text pair
    (`pairs`), which data setting limits the training sources
    (`max_source_tokens`), and serve and score the model.
    """

    finetune_policy = FinetunePolicy(
        parts=SEQ2SEQ_PARTS,
        narrowest_first=("embeddings", "attention", "encoder", "decoder"),
        keys=FinetuneKeys(free_model_keys=frozenset({"dropout"})),
    )

    def pairs(self, examples: list) -> list[tuple[str, str]]:
        raise NotImplementedError

    def max_source_tokens(self, recipe: dict) -> int | None:
        return None

    def within_source_limit(self, train: list, recipe: dict, source_lengths) -> list:
        """The examples of `train` whose source is at most `max_source_tokens` long.

        What training keeps (`datasets` drops the others), so tokenizers are
        built on these. `source_lengths(sources) -> list[int]` counts each
        source's tokens.
        """
        limit = self.max_source_tokens(recipe)
        if not limit:
            return list(train)
        lengths = source_lengths([source for source, _ in self.pairs(train)])
        return [e for e, n in zip(train, lengths, strict=True) if n <= limit]

    def vocabulary_texts(self, train: list) -> dict[str, list[str]]:
        pairs = self.pairs(train)
        return {"source": [s for s, _ in pairs], "target": [t for _, t in pairs]}

    def decoder_args(self, recipe: dict, tokenizers: dict) -> dict:
        """The `AttentionDecoder` arguments: the recipe's `model.decoder`, as the task reads it."""
        return dict(recipe["model"]["decoder"])

    def build_model(self, recipe: dict, tokenizers: dict, *, pretrained: bool = True):
        from zoo.tasks.seq2seq.training import build_model

        # bfloat16 compute with float32 weights pays off only for large dense
        # work; set on the model, not globally, so nothing else in the process changes.
        dtype = "mixed_bfloat16" if recipe["train"]["mixed_precision"] else None
        return build_model(
            recipe["model"],
            tokenizers["source"].vocab_size,
            tokenizers["target"].vocab_size,
            dtype,
            decoder=self.decoder_args(recipe, tokenizers),
        )

    def model_parts(self, model) -> dict[str, list]:
        decoder = model.decoder
        return {
            "encoder": [model.encoder],
            "decoder": [decoder],
            "attention": [decoder.attention_layer] if decoder.attention_layer is not None else [],
            "embeddings": [model.encoder.embedding, decoder.embedding],
        }

    def datasets(self, recipe, model, tokenizers, splits, run_dir, log):
        from zoo.tasks.seq2seq.training import text_datasets

        texts = {}
        for split in ("train", "validation"):
            pairs = self.pairs(getattr(splits, split))
            texts[split] = ([s for s, _ in pairs], [t for _, t in pairs])
        return text_datasets(
            recipe,
            tokenizers["source"],
            tokenizers["target"],
            texts,
            log,
            max_source_tokens=self.max_source_tokens(recipe),
        )

    def compile(self, model, train, steps_per_epoch, multipliers=None):
        from zoo.tasks.seq2seq.training import compile_model

        compile_model(model, train, steps_per_epoch, multipliers)
