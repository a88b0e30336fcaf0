import os
import textwrap

import pytest

from zoo.config import (
    REQUIRED,
    Field,
    RecipeError,
    Section,
    apply_overrides,
    at_least,
    default_recipe,
    dump_recipe,
    load_recipe,
    parse_override_value,
    positive,
    recipes,
    register_task_schema,
    resolve_recipe,
    save_recipe,
)


@pytest.fixture
def scratch_registry(monkeypatch):
    """Task schemas registered by a test disappear after it."""
    monkeypatch.setattr(recipes, "_TASK_SCHEMAS", dict(recipes._TASK_SCHEMAS))


def write(folder, text, name="recipe.yaml"):
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_text(recipe, overrides=(), source="recipes/x.yaml"):
    with pytest.raises(RecipeError) as info:
        resolve_recipe(recipe, overrides, source=source)
    return str(info.value)


# --- defaults and merge order


def test_defaults_filled():
    recipe = resolve_recipe({"task": "translation"})
    assert recipe["name"] == "translation"
    assert recipe["data"]["kind"] == "synthetic"
    assert recipe["data"]["size"] == 20000
    assert recipe["data"]["columns"] == [0, 1]
    assert recipe["model"]["encoder"] == {
        "cell": "gru",
        "units": 256,
        "layers": 1,
        "dropout": 0.0,
        "bidirectional": True,
    }
    assert recipe["model"]["attention"]["kind"] == "additive"
    assert recipe["model"]["decoder"]["style"] == "luong"
    assert recipe["train"]["learning_rate"] == 0.001
    assert recipe["train"]["bucket_boundaries"] == [8, 12, 16, 20, 25, 30, 40, 50, 60]
    assert recipe["decode"] == {
        "beam_size": 4,
        "length_penalty": 0.6,
        "coverage_penalty": 0.0,
        "no_repeat_ngram": 0,
        "max_length": 80,
        "precompute": False,
    }
    # Tokenizer defaults follow the data: WordPiece (lower-cased) on the synthetic grammar...
    assert recipe["tokenizer"]["kind"] == "wordpiece" and recipe["tokenizer"]["lowercase"]
    # ...SentencePiece, which keeps case, on a file.
    on_file = resolve_recipe({"task": "translation", "data": {"kind": "tsv", "path": __file__}})[
        "tokenizer"
    ]
    assert on_file["kind"] == "sentencepiece" and on_file["lowercase"] is False
    assert recipe["evaluate"]["length_buckets"] == [10, 20, 30, 40, 50]
    assert recipe["export"] == {"dir": "saved_models", "version": None}
    assert recipe["run"] == {"dir": "runs"}
    assert recipe == default_recipe("translation")


def test_resolved_keys_follow_schema_order():
    recipe = default_recipe("translation")
    assert list(recipe) == [
        "task",
        "name",
        "init_from",
        "data",
        "tokenizer",
        "model",
        "train",
        "decode",
        "evaluate",
        "export",
        "run",
        "finetune",
    ]


def test_defaults_are_not_shared_between_recipes():
    first = default_recipe("translation")
    first["train"]["bucket_boundaries"].append(99)
    assert default_recipe("translation")["train"]["bucket_boundaries"][-1] == 60


def test_merge_order_task_default_yaml_then_override(tmp_path):
    path = write(
        tmp_path,
        """
        task: translation
        model:
          encoder: {units: 64}
        train:
          epochs: 3
          batch_size: 16
        """,
    )
    recipe = load_recipe(path, ["train.epochs=7"])
    assert recipe["model"]["encoder"]["units"] == 64  # YAML over task default
    assert recipe["model"]["encoder"]["cell"] == "gru"  # task default kept beside it
    assert recipe["train"]["batch_size"] == 16  # YAML
    assert recipe["train"]["epochs"] == 7  # --set over YAML
    assert recipe["train"]["optimizer"] == "adam"  # task default


def test_task_default_overrides_library_default(scratch_registry):
    register_task_schema("toy_library_order", {"data": {"size": Field(int, 3)}})
    assert resolve_recipe({"task": "toy_library_order"})["name"] == "model"  # library
    assert resolve_recipe({"task": "translation"})["name"] == "translation"  # task


def test_yaml_float_spellings(tmp_path):
    path = write(tmp_path, "task: translation\ntrain: {learning_rate: 1e-3, clipnorm: 1E+1}\n")
    recipe = load_recipe(path)
    assert recipe["train"]["learning_rate"] == pytest.approx(0.001)
    assert isinstance(recipe["train"]["learning_rate"], float)
    assert recipe["train"]["clipnorm"] == 10.0


def test_int_given_for_float_becomes_float():
    recipe = resolve_recipe({"task": "translation", "train": {"clipnorm": 1}})
    assert recipe["train"]["clipnorm"] == 1.0
    assert isinstance(recipe["train"]["clipnorm"], float)


# --- error kinds, each naming the key path


def test_unknown_nested_key_suggests_the_close_one():
    message = error_text({"task": "translation", "model": {"encodr": {"units": 3}}})
    assert "recipes/x.yaml" in message
    assert "unknown key 'model.encodr' (did you mean 'model.encoder'?)" in message


def test_unknown_key_in_the_wrong_section_points_to_the_right_one():
    message = error_text({"task": "translation", "train": {"beam_size": 3}})
    assert "unknown key 'train.beam_size' (did you mean 'decode.beam_size'?)" in message


def test_unknown_key_without_close_match_lists_the_known_ones():
    message = error_text({"task": "translation", "decode": {"zzz": 1}})
    assert "unknown key 'decode.zzz' (expected one of: beam_size, length_penalty" in message


def test_wrong_type():
    message = error_text({"task": "translation", "model": {"encoder": {"units": "big"}}})
    assert message == (
        "recipes/x.yaml: model.encoder.units: expected a positive integer, got 'big'"
    )


def test_bool_is_not_an_integer():
    message = error_text({"task": "translation", "train": {"epochs": True}})
    assert "train.epochs: expected a positive integer, got true" in message


def test_float_is_not_an_integer():
    message = error_text({"task": "translation", "train": {"batch_size": 3.0}})
    assert "train.batch_size: expected a positive integer, got 3.0" in message


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        ("train", "learning_rate", 0, "expected a positive number, got 0"),
        ("train", "label_smoothing", 1.0, "expected a number in [0, 1), got 1.0"),
        ("decode", "beam_size", 0, "expected an integer >= 1, got 0"),
        ("decode", "length_penalty", -0.5, "expected a non-negative number, got -0.5"),
        (
            "train",
            "bucket_boundaries",
            [8, 4],
            "expected a non-empty list of increasing positive integers, got [8, 4]",
        ),
        ("data", "validation_size", 0, "expected an integer >= 1, got 0"),
        ("train", "clipnorm", -1.0, "expected a positive number or null, got -1.0"),
    ],
)
def test_out_of_range(section, key, value, expected):
    message = error_text({"task": "translation", section: {key: value}})
    assert f"{section}.{key}: {expected}" in message


def test_out_of_range_nested():
    message = error_text({"task": "translation", "model": {"decoder": {"dropout": 1.0}}})
    assert "model.decoder.dropout: expected a number in [0, 1), got 1.0" in message


def test_columns_must_be_two_distinct_non_negative_integers():
    message = error_text({"task": "translation", "data": {"columns": [1, 1]}})
    assert "data.columns: expected a list of two distinct non-negative integers" in message


def test_bad_choice_with_suggestion():
    message = error_text({"task": "translation", "model": {"attention": {"kind": "additve"}}})
    assert "model.attention.kind: expected one of 'additive', 'dot', 'general'" in message
    assert "got 'additve' (did you mean 'additive'?)" in message


def test_bad_task():
    message = error_text({"task": "translaton"})
    assert "recipes/x.yaml: task: expected one of 'captioning', 'parsing', 'translation'" in message
    assert "(did you mean 'translation'?)" in message


def test_section_given_a_scalar():
    message = error_text({"task": "translation", "model": 3})
    assert "model: expected a mapping of settings (embedding_dim" in message


def test_several_problems_reported_together():
    message = error_text(
        {"task": "translation", "train": {"epochs": 0}, "decode": {"beam_size": "x"}}
    )
    assert message.startswith("recipes/x.yaml: 2 problems:")
    assert "train.epochs: expected a positive integer, got 0" in message
    assert "decode.beam_size: expected an integer >= 1, got 'x'" in message


def test_missing_file_for_tsv(tmp_path):
    missing = tmp_path / "nope" / "pairs.tsv"
    message = error_text({"task": "translation", "data": {"kind": "tsv", "path": str(missing)}})
    assert message == f"recipes/x.yaml: data.path: file not found: {missing}"


def test_missing_relative_file_reports_the_resolved_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = error_text({"task": "translation", "data": {"kind": "tsv", "path": "x/y.tsv"}})
    resolved = os.path.join(str(tmp_path), "x", "y.tsv")
    assert f"data.path: file not found: 'x/y.tsv' (resolved to {resolved})" in message


def test_tsv_requires_a_path():
    message = error_text({"task": "translation", "data": {"kind": "tsv"}})
    assert "recipes/x.yaml: data.path: required when data.kind is 'tsv'" in message


def test_tsv_path_resolved_against_working_directory(tmp_path, monkeypatch):
    (tmp_path / "pairs.tsv").write_text("a\tb\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    recipe = resolve_recipe({"task": "translation", "data": {"kind": "tsv", "path": "pairs.tsv"}})
    assert recipe["data"]["path"] == os.path.join(str(tmp_path), "pairs.tsv")


def test_path_that_is_a_folder(tmp_path):
    message = error_text({"task": "translation", "data": {"kind": "tsv", "path": str(tmp_path)}})
    assert f"data.path: expected a file, got a folder: {tmp_path}" in message


def test_parallel_requires_both_files(tmp_path):
    source = tmp_path / "train.src"
    source.write_text("a\n", encoding="utf-8")
    message = error_text(
        {"task": "translation", "data": {"kind": "parallel", "source_path": str(source)}}
    )
    assert "data.target_path: required when data.kind is 'parallel'" in message
    message = error_text(
        {
            "task": "translation",
            "data": {
                "kind": "parallel",
                "source_path": str(source),
                "target_path": str(tmp_path / "train.tgt"),
            },
        }
    )
    assert f"data.target_path: file not found: {tmp_path / 'train.tgt'}" in message


def test_dot_attention_needs_matching_sizes():
    message = error_text({"task": "translation", "model": {"attention": {"kind": "dot"}}})
    assert "model.attention.kind: 'dot' attention" in message
    assert "encoder.units 256 x 2 directions = 512 but decoder.units 256" in message
    recipe = resolve_recipe(
        {"task": "translation", "model": {"attention": {"kind": "dot"}, "decoder": {"units": 512}}}
    )
    assert recipe["model"]["decoder"]["units"] == 512
    resolve_recipe(
        {
            "task": "translation",
            "model": {"attention": {"kind": "dot"}, "encoder": {"bidirectional": False}},
        }
    )


def test_min_words_above_max_words():
    message = error_text({"task": "translation", "data": {"min_words": 9, "max_words": 5}})
    assert "data.min_words: must be <= data.max_words (5), got 9" in message


def test_malformed_override():
    for override in ("a.b", "=3", "train..epochs=3"):
        message = error_text({"task": "translation"}, [override])
        assert message.startswith(f"--set {override}: malformed override {override!r}")
        assert "expected KEY.PATH=VALUE" in message


def test_override_of_unknown_key():
    message = error_text({"task": "translation"}, ["model.encodr.units=3"])
    assert message == (
        "--set model.encodr.units=3: unknown key 'model.encodr' (did you mean 'model.encoder'?)"
    )


def test_override_below_a_setting():
    message = error_text({"task": "translation"}, ["train.epochs.x=3"])
    assert "'train.epochs' is a setting, not a section" in message


def test_override_with_a_bad_value_names_the_override():
    message = error_text({"task": "translation"}, ["model.encoder.units=big"])
    assert message == (
        "--set model.encoder.units=big: model.encoder.units: expected a positive integer, got 'big'"
    )


def test_override_can_set_the_task():
    assert resolve_recipe({}, ["task=translation"])["task"] == "translation"


# --- override values


@pytest.mark.parametrize(
    "text, value",
    [
        ("3", 3),
        ("-2", -2),
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("5e-4", 0.0005),
        ("1.5E3", 1500.0),
        ("[1,2]", [1, 2]),
        ("[8, 16, 32]", [8, 16, 32]),
        ("none", None),
        ("None", None),
        ("null", None),
        ("true", True),
        ("false", False),
        ("gru", "gru"),
        ("{units: 3}", {"units": 3}),
    ],
)
def test_parse_override_value(text, value):
    parsed = parse_override_value(text)
    assert parsed == value
    assert type(parsed) is type(value)


def test_overrides_applied_with_types():
    recipe = resolve_recipe(
        {"task": "translation"},
        [
            "train.learning_rate=1e-3",
            "train.epochs=3",
            "train.clipnorm=none",
            "train.mixed_precision=true",
            "train.bucket_boundaries=[4,8]",
            "train.patience=2",
            "model.encoder.cell=lstm",
        ],
    )
    assert recipe["train"]["learning_rate"] == 0.001
    assert recipe["train"]["epochs"] == 3
    assert recipe["train"]["clipnorm"] is None
    assert recipe["train"]["mixed_precision"] is True
    assert recipe["train"]["bucket_boundaries"] == [4, 8]
    assert recipe["train"]["patience"] == 2
    assert recipe["model"]["encoder"]["cell"] == "lstm"


def test_string_settings_keep_the_text_as_written():
    recipe = resolve_recipe(
        {"task": "translation"}, ["model.attention.kind=none", "name=no", "run.dir=123"]
    )
    assert recipe["model"]["attention"]["kind"] == "none"  # the choice, not null
    assert recipe["name"] == "no"  # not YAML 1.1's False
    assert recipe["run"]["dir"] == "123"


def test_mapping_override_merges_into_the_section():
    recipe = resolve_recipe(
        {"task": "translation", "model": {"encoder": {"cell": "lstm"}}},
        ["model.encoder={units: 32}"],
    )
    assert recipe["model"]["encoder"]["units"] == 32
    assert recipe["model"]["encoder"]["cell"] == "lstm"


def test_apply_overrides_does_not_modify_its_input():
    recipe = {"task": "translation", "train": {"epochs": 2}}
    updated = apply_overrides(recipe, ["train.epochs=5", "decode.beam_size=1"])
    assert recipe == {"task": "translation", "train": {"epochs": 2}}
    assert updated == {"task": "translation", "train": {"epochs": 5}, "decode": {"beam_size": 1}}


# --- files


def test_save_then_load_round_trip(tmp_path):
    recipe = resolve_recipe(
        {"task": "translation"},
        [
            "train.learning_rate=5e-4",
            "model.attention.kind=none",
            "name=1e-3",  # a string that looks like a float must stay a string
            "train.steps_per_epoch=10",
        ],
    )
    path = tmp_path / "out" / "recipe.yaml"
    save_recipe(recipe, path)
    assert load_recipe(path) == recipe
    assert os.listdir(path.parent) == ["recipe.yaml"]  # no temporary left behind


def test_saved_recipe_is_readable(tmp_path):
    text = dump_recipe(default_recipe("translation"))
    assert text.startswith(
        "task: translation\nname: translation\ninit_from: null\n\ndata:\n  kind: synthetic\n"
    )
    assert "  bucket_boundaries: [8, 12, 16, 20, 25, 30, 40, 50, 60]\n" in text
    assert "  learning_rate: 0.001\n" in text
    assert text.index("train:") < text.index("decode:") < text.index("run:")


def test_dump_orders_keys_like_the_schema():
    text = dump_recipe({"run": {"dir": "r"}, "train": {"epochs": 1}, "task": "translation"})
    assert text.index("task:") < text.index("train:") < text.index("run:")


def test_yaml_that_is_not_a_mapping(tmp_path):
    path = write(tmp_path, "- task: translation\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value).startswith(f"{path}: expected a mapping of settings at the top level")


def test_empty_file(tmp_path):
    path = write(tmp_path, "# nothing yet\n")
    with pytest.raises(RecipeError, match="recipe is empty") as info:
        load_recipe(path)
    assert str(info.value).startswith(str(path))


def test_missing_task(tmp_path):
    path = write(tmp_path, "train: {epochs: 3}\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert (
        str(info.value)
        == f"{path}: missing required key 'task' (one of 'captioning', 'parsing', 'translation')"
    )


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "task: translation\ntrain: [epochs: 3\n")
    with pytest.raises(RecipeError, match=r"invalid YAML at line \d+") as info:
        load_recipe(path)
    assert str(info.value).startswith(str(path))


def test_duplicate_key_is_an_error(tmp_path):
    path = write(tmp_path, "task: translation\ntrain: {epochs: 3}\ntrain: {epochs: 4}\n")
    with pytest.raises(RecipeError, match="duplicate key 'train'"):
        load_recipe(path)


def test_error_in_file_names_the_file(tmp_path):
    path = write(tmp_path, "task: translation\nmodel:\n  encoder:\n    units: big\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value) == (
        f"{path}: model.encoder.units: expected a positive integer, got 'big'"
    )
    assert info.value.key == "model.encoder.units"
    assert info.value.source == str(path)


# --- the schema engine on its own


def test_engine_types_and_hooks(tmp_path, scratch_registry):
    def at_most_one_source(section, path):
        if section["image"] is not None and section["images"] is not None:
            raise RecipeError("set either image or images", key=f"{path}.images")

    register_task_schema(
        "toy_engine",
        {
            "data": Section(
                {
                    "sizes": Field(int | list[int], 3, check=None),
                    "ratio": Field(float, 0.5),
                    "tags": Field(list[str], []),
                    "image": Field(str, None, path_must_exist="file"),
                    "images": Field(str, None, path_must_exist="dir"),
                    "count": Field(int, REQUIRED, check=at_least(2)),
                    "width": Field(int, 4, check=positive()),
                },
                validate=at_most_one_source,
            )
        },
    )
    recipe = resolve_recipe({"task": "toy_engine", "data": {"sizes": [1, 2], "count": 2}})
    assert recipe["data"]["sizes"] == [1, 2]
    assert resolve_recipe({"task": "toy_engine", "data": {"count": 2}})["data"]["sizes"] == 3
    message = error_text({"task": "toy_engine", "data": {"sizes": "x", "count": 2}})
    assert "data.sizes: expected an integer or a list of integers, got 'x'" in message
    message = error_text({"task": "toy_engine"})
    assert "data.count: missing required setting (an integer >= 2)" in message
    message = error_text({"task": "toy_engine", "data": {"count": 2, "tags": ["a", 1]}})
    assert "data.tags: expected a list of strings, got ['a', 1]" in message
    image = tmp_path / "a.png"
    image.write_bytes(b"x")
    message = error_text(
        {"task": "toy_engine", "data": {"count": 2, "image": str(image), "images": str(image)}}
    )
    assert f"data.images: expected a folder, got a file: {image}" in message
    message = error_text(
        {"task": "toy_engine", "data": {"count": 2, "image": str(image), "images": str(tmp_path)}}
    )
    assert "data.images: set either image or images" in message


def test_jit_compile_is_refused_with_the_reason():
    with pytest.raises(RecipeError, match=r"train\.jit_compile: .*XLA cannot compile"):
        resolve_recipe({"task": "translation", "train": {"jit_compile": True}})


def test_captioning_scenes_take_one_to_three_objects_written_out():
    # The defaults are 1 and 3; a recipe (or a saved one) that writes them must pass.
    recipe = resolve_recipe({"task": "captioning", "data": {"min_objects": 1, "max_objects": 3}})
    assert (recipe["data"]["min_objects"], recipe["data"]["max_objects"]) == (1, 3)
    with pytest.raises(RecipeError, match="data.max_objects: expected an integer from 1 to 3"):
        resolve_recipe({"task": "captioning", "data": {"max_objects": 4}})
