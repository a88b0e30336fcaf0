"""Readers of image-captioning data: Flickr8k token files, COCO caption JSON, Karpathy splits.

Three formats users have, each read into `CaptionedImage` records (an image
path, its raw captions, an id):

- Flickr8k's ``Flickr8k.token.txt`` (``1000268201_693b08cb0e.jpg#0<TAB>A
  child in a pink dress ...``), with the official split lists
  ``Flickr_8k.{train,dev,test}Images.txt`` when they are there:
  `read_flickr8k`.
- COCO's ``captions_train2014.json`` / ``captions_val2017.json``:
  `read_coco_captions`.
- Karpathy's split files ``dataset_flickr8k.json``, ``dataset_flickr30k.json``
  and ``dataset_coco.json``, the splits most captioning papers report on:
  `read_karpathy`.

Every reader returns ``(result, report)``, as `zoo.data.translation_readers`
does: the records, and a `CaptionReadReport` of what was left out and why.
Nothing is dropped silently: a malformed line (listed with its 1-based line
number), an empty caption (counted), an image listed but absent from disk
(listed by name) or, with ``verify_images=True``, a file TensorFlow could not
decode (listed with the reason) is skipped and recorded. ``strict=True``
turns the first malformed line or missing image into an error instead. A
JSON file of the wrong shape raises a `DataFormatError` that names the
missing key, and so does a read that leaves no image at all.

Captions are kept as written, only stripped of surrounding white space:
tokenisation and lower-casing belong to the caption tokenizer.

Example:
    ```python
    splits, report = read_flickr8k("flickr8k/Flickr8k.token.txt")
    print(report.summary())
    # Flickr8k.token.txt: 300 lines, 60 images with 300 captions kept, 0 malformed
    images = splits["all"]  # no official split lists beside this sample
    ```
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import itertools
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from zoo.data.translation_readers import DataFormatError

__all__ = [
    "FLICKR8K_SPLIT_FILES",
    "CaptionReadReport",
    "CaptionedImage",
    "DataFormatError",
    "read_coco_captions",
    "read_flickr8k",
    "read_karpathy",
]

# The official list files of Flickr8k, by the split names the zoo uses.
FLICKR8K_SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "validation": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}
# Image folders looked for beside the token file: ours, the official zip's
# (misspelt as shipped), the same spelt right, and Kaggle's.
_FLICKR8K_IMAGE_DIRS = ("images", "Flicker8k_Dataset", "Flickr8k_Dataset", "Images")
_KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "validation", "test": "test"}
_SPLIT_ORDER = ("train", "validation", "test")
_BOM = b"\xef\xbb\xbf"
_SHOWN_IN_SUMMARY = 5


@dataclasses.dataclass(frozen=True)
class CaptionedImage:
    """One image and its captions.

    Attributes:
        image: the path of the image file, as the reader resolved it
            (``images_dir`` joined with the name in the data file).
        captions: the raw captions, as written in the file, stripped of
            surrounding white space; never empty strings.
        image_id: the file name for Flickr8k (also in Karpathy's Flickr
            files), the numeric id as a string for COCO (also Karpathy's
            ``cocoid``).
    """

    image: str
    captions: tuple[str, ...]
    image_id: str


@dataclasses.dataclass
class CaptionReadReport:
    """What a caption reader did: entries read, images and captions kept, what was left out.

    Attributes:
        path: the data file read.
        entries: how many entries were read, counted in `entry_kind`.
        entry_kind: ``"lines"`` (Flickr8k), ``"annotations"`` (COCO) or
            ``"images"`` (Karpathy).
        images: images returned (all splits together).
        captions: captions returned.
        malformed: ``(where, reason)`` for each entry left out, ``where``
            being ``"line 17"``, ``"annotations[3]"`` or
            ``"Flickr_8k.devImages.txt line 2"``.
        empty_captions: captions dropped because they were empty.
        missing_images: the names (as written in the data file) of images
            not found on disk.
        unreadable_images: with ``verify_images=True``, the reasons
            (from `zoo.data.images.check_image_file`) of files left out.
        uncaptioned_images: images listed (in COCO's ``images``, a split
            list, a Karpathy entry) that had no caption left.
        unassigned_images: Flickr8k images with captions but in no split
            list (the official lists leave some out).
        boxes: object boxes returned (`zoo.data.coco_instances.read_coco_instances`, which
            reads no caption).
    """

    path: str
    entries: int = 0
    entry_kind: str = "lines"
    images: int = 0
    captions: int = 0
    malformed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    empty_captions: int = 0
    missing_images: list[str] = dataclasses.field(default_factory=list)
    unreadable_images: list[str] = dataclasses.field(default_factory=list)
    uncaptioned_images: int = 0
    unassigned_images: int = 0
    boxes: int = 0

    def summary(self) -> str:
        """One line, e.g. ``"Flickr8k.token.txt: 300 lines, 60 images with 300 captions kept, 0 malformed"``."""
        kept = f"{self.boxes} boxes" if self.boxes else f"{self.captions} captions"
        text = (
            f"{os.path.basename(self.path)}: {self.entries} {self.entry_kind}, {self.images} "
            f"images with {kept} kept, {len(self.malformed)} malformed"
        )
        if self.malformed:
            text += f" ({_shown(f'{where}: {why}' for where, why in self.malformed)})"
        if self.empty_captions:
            text += f"; {_count(self.empty_captions, 'empty caption')} dropped"
        if self.missing_images:
            missing = _count(len(self.missing_images), "image")
            text += f"; {missing} missing on disk ({_shown(self.missing_images)})"
        if self.unreadable_images:
            unreadable = _count(len(self.unreadable_images), "image")
            text += f"; {unreadable} unreadable ({_shown(self.unreadable_images)})"
        if self.uncaptioned_images:
            text += f"; {_count(self.uncaptioned_images, 'image')} without captions"
        if self.unassigned_images:
            text += f"; {_count(self.unassigned_images, 'image')} in no split"
        return text


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _shown(items) -> str:
    items = list(items)
    hidden = len(items) - _SHOWN_IN_SUMMARY
    return "; ".join(items[:_SHOWN_IN_SUMMARY]) + (f"; and {hidden} more" if hidden > 0 else "")


def _read_bytes(path: str | os.PathLike, what: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"No such {what}", os.fspath(path)) from None


def _lines(path: str | os.PathLike, what: str) -> Iterator[tuple[int, str | None, str]]:
    """``(line_number, text, "")``, or ``(line_number, None, reason)`` for a line that is not UTF-8.

    A byte order mark and Windows line ends are accepted.
    """
    data = _read_bytes(path, what)
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    lines = data.split(b"\n")
    if lines[-1] == b"":  # The end of the last line, not a line.
        lines.pop()
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix(b"\r")
        try:
            yield number, line.decode("utf-8"), ""
        except UnicodeDecodeError as error:
            byte = line[error.start]
            yield number, None, f"invalid UTF-8 (byte {byte:#04x} at position {error.start + 1})"


def _load_json(path: str | os.PathLike) -> Any:
    data = _read_bytes(path, "caption JSON file")
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataFormatError(f"{os.fspath(path)}: not a valid JSON file ({error})") from None


class _Reading:
    """The report of a read in progress, its strictness, and a cache of folder listings."""

    def __init__(self, path: str | os.PathLike, entry_kind: str, strict: bool) -> None:
        self.path = os.fspath(path)
        self.report = CaptionReadReport(self.path, entry_kind=entry_kind)
        self.strict = strict
        self._listings: dict[str, frozenset[str]] = {}
        self._first_missing: str | None = None

    def malformed(self, where: str, reason: str) -> None:
        if self.strict:
            raise DataFormatError(f"{self.path}, {where}: {reason}")
        self.report.malformed.append((where, reason))

    def field(self, entry: Any, key: str, where: str | None) -> Any:
        """``entry[key]``, or a `DataFormatError` naming the key and where it was expected.

        `where` is the entry's place, e.g. ``"images[3]"``; None for the whole file.
        """
        if not isinstance(entry, dict):
            raise DataFormatError(
                f"{self.path}: {where or 'the file'} must be a JSON object with the key "
                f"{key!r}, found {type(entry).__name__}"
            )
        if key not in entry:
            raise DataFormatError(f"{self.path}: {where or 'the file'} has no {key!r} key")
        return entry[key]

    def list_field(self, entry: Any, key: str, where: str | None) -> list:
        value = self.field(entry, key, where)
        if not isinstance(value, list):
            place = f"{where}[{key!r}]" if where else repr(key)
            raise DataFormatError(
                f"{self.path}: {place} must be a JSON list, found {type(value).__name__}"
            )
        return value

    def caption(self, text: Any, where: str) -> str | None:
        """The stripped caption; None (counted or reported) when empty or not a string."""
        if not isinstance(text, str):
            self.malformed(where, f"caption is not a string: {text!r:.60}")
            return None
        text = text.strip()
        if not text:
            self.report.empty_captions += 1
            return None
        return text

    def exists(self, path: str) -> bool:
        # One listing per folder: far faster than a stat per image on 100k-image folders.
        folder, name = os.path.split(path)
        if folder not in self._listings:
            try:
                self._listings[folder] = frozenset(os.listdir(folder or "."))
            except OSError:
                self._listings[folder] = frozenset()
        return name in self._listings[folder]

    def image(
        self, path: str, name: str, captions: list[str], image_id: str
    ) -> CaptionedImage | None:
        """The record, or None (recorded in the report) with no caption or no file."""
        if not captions:
            self.report.uncaptioned_images += 1
            return None
        if not self.exists(path):
            if self.strict:
                raise DataFormatError(f"{self.path}: image {name} is not on disk ({path})")
            self.report.missing_images.append(name)
            self._first_missing = self._first_missing or path
            return None
        return CaptionedImage(path, tuple(captions), image_id)

    def finish(
        self, splits: dict[str, list[CaptionedImage]], verify_images: bool
    ) -> tuple[dict[str, list[CaptionedImage]], CaptionReadReport]:
        if verify_images:
            from zoo.data.images import check_image_files

            paths = [record.image for records in splits.values() for record in records]
            bad = check_image_files(paths)
            if bad and self.strict:
                raise DataFormatError(f"{self.path}: {next(iter(bad.values()))}")
            self.report.unreadable_images.extend(bad.values())
            splits = {
                split: [record for record in records if record.image not in bad]
                for split, records in splits.items()
            }
        self.report.images = sum(len(records) for records in splits.values())
        self.report.captions = sum(
            len(record.captions) for records in splits.values() for record in records
        )
        if not self.report.images:
            hint = (
                f"; looked for images such as {self._first_missing}" if self._first_missing else ""
            )
            raise DataFormatError(
                f"{self.path}: no usable captioned image ({self.report.summary()}){hint}"
            )
        return splits, self.report


def _ordered(splits: dict[str, list[CaptionedImage]]) -> dict[str, list[CaptionedImage]]:
    """train, validation, test first, then any other split in its order of appearance."""
    known = {split: splits[split] for split in _SPLIT_ORDER if split in splits}
    return known | {split: records for split, records in splits.items() if split not in known}


def _flickr8k_images_dir(token_path: str) -> str:
    folder = os.path.dirname(token_path)
    for name in _FLICKR8K_IMAGE_DIRS:
        if os.path.isdir(os.path.join(folder, name)):
            return os.path.join(folder, name)
    looked_for = ", ".join(f"{name}/" for name in _FLICKR8K_IMAGE_DIRS)
    raise FileNotFoundError(
        errno.ENOENT,
        f"No Flickr8k image folder beside the token file (looked for {looked_for}); "
        "pass images_dir",
        folder or ".",
    )


def read_flickr8k(
    token_file: str | os.PathLike,
    images_dir: str | os.PathLike | None = None,
    split_files: Mapping[str, str | os.PathLike] | None = None,
    *,
    verify_images: bool = False,
    strict: bool = False,
) -> tuple[dict[str, list[CaptionedImage]], CaptionReadReport]:
    """Reads Flickr8k captions (``Flickr8k.token.txt``, or Kaggle's ``captions.txt``) and splits them.

    Lines are ``<image file>#<n><TAB><caption>``, five captions per image
    (``#0`` to ``#4``); the captions of an image keep their file order.
    Blank lines are skipped. A line without a tab, with an id that is not
    ``<file>#<number>``, with a caption id seen before, or not UTF-8 is
    malformed; an empty caption is dropped and counted.

    A file whose first line is the header ``image,caption`` is the popular
    Kaggle copy's ``captions.txt`` (images in ``Images/``): one
    ``<image file>,<caption>`` a line, the caption quoted or not (the image
    name ends at the first comma). A line without a comma or without an image
    name is malformed; line numbers count the header.

    Args:
        token_file: the token file (``Flickr8k.lemma.token.txt`` reads the same
            way), or Kaggle's ``captions.txt``.
        images_dir: the folder of the JPEG files; by default the first of
            ``images/``, ``Flicker8k_Dataset/`` (the official folder name),
            ``Flickr8k_Dataset/`` and ``Images/`` that exists beside the token file.
        split_files: split name -> list file (one image file name a line, as
            ``Flickr_8k.trainImages.txt``). By default the official list files
            beside the token file are used, under the names ``"train"``,
            ``"validation"`` (``devImages``) and ``"test"``; when none is
            there the result is ``{"all": [...]}``, for the caller to split
            with a seed. A listed name without captions is malformed (with
            the list file's line number), so is a name listed in two splits
            (the second listing is dropped); captioned images in no list are
            counted in ``report.unassigned_images``.
        verify_images: decode every image file with Pillow
            (`zoo.data.images.check_image_files`) and leave out the ones
            TensorFlow could not decode. Takes about a minute on the full set.
        strict: raise at the first malformed line, missing or unreadable image.

    Returns:
        ``(splits, report)``: split name -> `CaptionedImage` records (in the
        list file's order, or the token file's for ``"all"``), and the
        `CaptionReadReport`.

    Raises:
        FileNotFoundError: no token file, split list file or image folder.
        DataFormatError: with ``strict=True`` as above, or no image left.
    """
    reading = _Reading(token_file, "lines", strict)
    token_path = reading.path
    images_dir = _flickr8k_images_dir(token_path) if images_dir is None else os.fspath(images_dir)
    if not os.path.isdir(images_dir):
        raise FileNotFoundError(errno.ENOENT, "No such image folder", images_dir)
    lines = _lines(token_path, "caption token file")
    first = next(lines, None)
    if first is not None and _is_csv_header(first[1]):
        captions = _flickr8k_csv_captions(reading, lines)
    else:
        captions = _flickr8k_token_captions(reading, [first] if first else [], lines)
    return _flickr8k_splits(reading, images_dir, captions, split_files, verify_images)


def _is_csv_header(line: str | None) -> bool:
    return line is not None and line.strip().replace(" ", "").lower() == "image,caption"


def _content_lines(reading: _Reading, lines) -> Iterator[tuple[int, str, str]]:
    """``(number, "line N", text)`` of the lines that hold text; counts them all, reports bad UTF-8."""
    for number, line, reason in lines:
        reading.report.entries = number
        where = f"line {number}"
        if line is None:
            reading.malformed(where, reason)
        elif line.strip():
            yield number, where, line


def _flickr8k_token_captions(reading: _Reading, *line_groups) -> dict[str, list[str]]:
    """``image -> captions`` of the lines of a ``Flickr8k.token.txt``."""
    captions: dict[str, list[str]] = {}
    first_seen: dict[str, int] = {}
    for number, where, line in _content_lines(reading, itertools.chain(*line_groups)):
        caption_id, tab, caption = line.partition("\t")
        caption_id = caption_id.strip()
        name, hash_sign, index = caption_id.rpartition("#")
        if not tab:
            reading.malformed(where, "expected '<image>#<n><TAB><caption>', found no tab")
        elif not hash_sign or not name or not index.isdigit():
            reading.malformed(where, f"caption id {caption_id!r} is not '<image file>#<number>'")
        elif caption_id in first_seen:
            reading.malformed(
                where, f"duplicate caption id {caption_id} (first on line {first_seen[caption_id]})"
            )
        else:
            first_seen[caption_id] = number
            texts = captions.setdefault(name, [])
            if (text := reading.caption(caption, where)) is not None:
                texts.append(text)
    return captions


def _flickr8k_csv_captions(reading: _Reading, lines) -> dict[str, list[str]]:
    """``image -> captions`` of the lines after the header of a Kaggle ``captions.txt``.

    Each line is ``image,caption``. The image name ends at the first comma
    (Flickr file names have none); the caption is the rest, CSV-unquoted when
    it is quoted (``"A dog, wet, runs ."``), else taken as written (the Kaggle
    file leaves captions with commas unquoted).
    """
    captions: dict[str, list[str]] = {}
    for _, where, line in _content_lines(reading, lines):
        name, comma, caption = line.partition(",")
        name = name.strip().strip('"').strip()
        if not comma:
            reading.malformed(where, "expected 'image,caption', found no comma")
            continue
        if not name:
            reading.malformed(where, "no image file name before the comma")
            continue
        quoted = caption.strip()
        if len(quoted) >= 2 and quoted[0] == quoted[-1] == '"':
            try:
                (caption,) = next(csv.reader([quoted]))
            except (csv.Error, ValueError):
                reading.malformed(where, "a quoted caption that is not valid CSV")
                continue
        texts = captions.setdefault(name, [])
        if (text := reading.caption(caption, where)) is not None:
            texts.append(text)
    return captions


def _flickr8k_splits(
    reading: _Reading,
    images_dir: str,
    captions: dict[str, list[str]],
    split_files: Mapping[str, str | os.PathLike] | None,
    verify_images: bool,
) -> tuple[dict[str, list[CaptionedImage]], CaptionReadReport]:
    token_path = reading.path
    if split_files is None:
        folder = os.path.dirname(token_path)
        official = {
            split: os.path.join(folder, name) for split, name in FLICKR8K_SPLIT_FILES.items()
        }
        split_files = {split: path for split, path in official.items() if os.path.isfile(path)}
    if not split_files:
        names_by_split = {"all": list(captions)}
    else:
        names_by_split = {}
        assigned: dict[str, str] = {}
        token_name = os.path.basename(token_path)
        for split, list_path in split_files.items():
            names = names_by_split.setdefault(split, [])
            list_name = os.path.basename(os.fspath(list_path))
            for number, line, reason in _lines(list_path, "split list file"):
                where = f"{list_name} line {number}"
                name = (line or "").strip()
                if line is None:
                    reading.malformed(where, reason)
                elif not name:
                    continue
                elif name not in captions:
                    reading.malformed(where, f"{name} has no caption in {token_name}")
                elif name in assigned:
                    reading.malformed(where, f"{name} is already in the {assigned[name]!r} split")
                else:
                    assigned[name] = split
                    names.append(name)
        reading.report.unassigned_images = sum(
            1 for name, texts in captions.items() if texts and name not in assigned
        )

    splits: dict[str, list[CaptionedImage]] = {}
    for split, names in names_by_split.items():
        records = (
            reading.image(os.path.join(images_dir, name), name, captions[name], name)
            for name in names
        )
        splits[split] = [record for record in records if record is not None]
    return reading.finish(_ordered(splits), verify_images)


def _coco_images_dir(json_path: str) -> str:
    folder = os.path.dirname(json_path)
    candidates = [os.path.join(folder, "images")]
    # The official layout: annotations/captions_val2017.json beside val2017/.
    stem = os.path.splitext(os.path.basename(json_path))[0]
    if stem.startswith("captions_"):
        subset = stem.removeprefix("captions_")
        candidates += [os.path.join(folder, subset), os.path.join(folder, os.pardir, subset)]
    return next((path for path in candidates if os.path.isdir(path)), folder)


def read_coco_captions(
    json_path: str | os.PathLike,
    images_dir: str | os.PathLike | None = None,
    *,
    verify_images: bool = False,
    strict: bool = False,
) -> tuple[list[CaptionedImage], CaptionReadReport]:
    """Reads a COCO captions file (``captions_train2014.json``, ``captions_val2017.json``).

    The file holds ``images`` (each with ``id`` and ``file_name``) and
    ``annotations`` (each with ``image_id`` and ``caption``); other keys are
    ignored. An annotation whose image is not in ``images``, a caption that
    is not a string or a repeated image id is malformed (reported as
    ``annotations[i]`` / ``images[i]``); an empty caption is dropped and
    counted; an image without captions is counted.

    Args:
        json_path: the captions JSON file.
        images_dir: the folder of the image files. By default ``images/``
            beside the JSON file, else (for ``captions_val2017.json``) a
            ``val2017/`` folder beside it or beside its folder (the official
            layout), else the JSON file's own folder.
        verify_images: leave out image files TensorFlow could not decode
            (checked with Pillow, as `read_flickr8k` does).
        strict: raise at the first malformed entry, missing or unreadable image.

    Returns:
        ``(images, report)``: `CaptionedImage` records in the order of
        ``images``, ``image_id`` being COCO's numeric id as a string, and the
        `CaptionReadReport` (entries counted in annotations).

    Raises:
        FileNotFoundError: no such JSON file.
        DataFormatError: not JSON, or a key missing (the message names it,
            e.g. ``annotations[17] has no 'caption' key``), with
            ``strict=True`` as above, or no image left.
    """
    reading = _Reading(json_path, "annotations", strict)
    path = reading.path
    images_dir = _coco_images_dir(path) if images_dir is None else os.fspath(images_dir)
    data = _load_json(path)
    if isinstance(data, dict) and "annotations" not in data and "dataset" in data:
        raise DataFormatError(
            f"{path}: the file has no 'annotations' key; it looks like a Karpathy split "
            "file: read it with read_karpathy"
        )
    images = reading.list_field(data, "images", None)
    annotations = reading.list_field(data, "annotations", None)

    file_names: dict[str, str] = {}
    for i, entry in enumerate(images):
        image_id = str(reading.field(entry, "id", f"images[{i}]"))
        file_name = reading.field(entry, "file_name", f"images[{i}]")
        if image_id in file_names:
            reading.malformed(f"images[{i}]", f"id {image_id} appears twice")
        elif not isinstance(file_name, str) or not file_name.strip():
            reading.malformed(f"images[{i}]", f"file_name is not a file name: {file_name!r:.60}")
        else:
            file_names[image_id] = file_name.strip()

    captions: dict[str, list[str]] = {image_id: [] for image_id in file_names}
    for i, entry in enumerate(annotations):
        where = f"annotations[{i}]"
        image_id = str(reading.field(entry, "image_id", where))
        text = reading.field(entry, "caption", where)
        reading.report.entries += 1
        if image_id not in captions:
            reading.malformed(where, f"image_id {image_id} is not in 'images'")
        elif (caption := reading.caption(text, where)) is not None:
            captions[image_id].append(caption)

    records = (
        reading.image(os.path.join(images_dir, name), name, captions[image_id], image_id)
        for image_id, name in file_names.items()
    )
    splits, report = reading.finish(
        {"all": [record for record in records if record is not None]}, verify_images
    )
    return splits["all"], report


def read_karpathy(
    json_path: str | os.PathLike,
    images_dir: str | os.PathLike,
    *,
    verify_images: bool = False,
    strict: bool = False,
) -> tuple[dict[str, list[CaptionedImage]], CaptionReadReport]:
    """Reads Karpathy's split file (``dataset_flickr8k.json``, ``dataset_coco.json``, ...).

    The file is ``{"images": [{"filename", "filepath" (COCO only), "split",
    "sentences": [{"raw", "tokens"}, ...], "imgid", "cocoid" (COCO only)},
    ...], "dataset": ...}``. Splits are renamed to the zoo's: ``"val"`` ->
    ``"validation"``, ``"restval"`` -> ``"train"`` (Karpathy's extra COCO
    training images); other split names are kept as they are. A caption
    is the ``raw`` string, else its ``tokens`` joined by spaces.

    Args:
        json_path: the split JSON file.
        images_dir: the image folder; an image is ``images_dir/filepath/filename``
            (``coco/val2014/COCO_val2014_000000391895.jpg``) or, without
            ``filepath``, ``images_dir/filename``. Karpathy's COCO file names
            the 2014 files: images downloaded as COCO 2017 are named otherwise.
        verify_images: leave out image files TensorFlow could not decode.
        strict: raise at the first missing or unreadable image.

    Returns:
        ``(splits, report)``: split name -> `CaptionedImage` records in file
        order (``image_id``: ``cocoid`` as a string when present, else the
        file name), and the `CaptionReadReport` (entries counted in images).

    Raises:
        FileNotFoundError: no such JSON file or image folder.
        DataFormatError: not JSON, or a key missing (the message names it,
            e.g. ``images[3] has no 'sentences' key``), with ``strict=True``
            as above, or no image left.
    """
    reading = _Reading(json_path, "images", strict)
    path = reading.path
    images_dir = os.fspath(images_dir)
    if not os.path.isdir(images_dir):
        raise FileNotFoundError(errno.ENOENT, "No such image folder", images_dir)
    data = _load_json(path)
    entries = reading.list_field(data, "images", None)
    if isinstance(data, dict) and "annotations" in data and "dataset" not in data:
        raise DataFormatError(
            f"{path}: the file has 'annotations' and no 'dataset' key; it looks like a COCO "
            "captions file: read it with read_coco_captions"
        )

    splits: dict[str, list[CaptionedImage]] = {}
    for i, entry in enumerate(entries):
        where = f"images[{i}]"
        file_name = reading.field(entry, "filename", where)
        split = reading.field(entry, "split", where)
        sentences = reading.list_field(entry, "sentences", where)
        reading.report.entries += 1
        if not isinstance(file_name, str) or not file_name.strip():
            reading.malformed(where, f"filename is not a file name: {file_name!r:.60}")
            continue
        if not isinstance(split, str):
            reading.malformed(where, f"split is not a string: {split!r:.60}")
            continue
        captions = []
        for j, sentence in enumerate(sentences):
            sentence_where = f"{where}['sentences'][{j}]"
            if isinstance(sentence, dict) and "raw" not in sentence and "tokens" in sentence:
                tokens = sentence["tokens"]
                text = " ".join(tokens) if isinstance(tokens, list) else tokens
            else:
                text = reading.field(sentence, "raw", sentence_where)
            if (caption := reading.caption(text, sentence_where)) is not None:
                captions.append(caption)
        folder = entry.get("filepath") or ""
        name = os.path.join(str(folder), file_name.strip())
        image_id = str(entry["cocoid"]) if "cocoid" in entry else file_name.strip()
        record = reading.image(os.path.join(images_dir, name), name, captions, image_id)
        if record is not None:
            splits.setdefault(_KARPATHY_SPLITS.get(split, split), []).append(record)
    return reading.finish(_ordered(splits), verify_images)
