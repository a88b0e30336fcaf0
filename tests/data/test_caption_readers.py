import dataclasses
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from zoo.data.caption_readers import (
    CaptionedImage,
    CaptionReadReport,
    DataFormatError,
    read_coco_captions,
    read_flickr8k,
    read_karpathy,
)

SAMPLE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "captioning"


def jpeg_bytes(colour=(200, 30, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 4), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def write_images(folder: Path, *names: str) -> Path:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg_bytes())
    return folder


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ---------------------------------------------------------------- real samples


@pytest.fixture
def flickr8k_sample() -> Path:
    path = SAMPLE_DIR / "flickr8k" / "Flickr8k.token.txt"
    if not path.is_file():
        pytest.skip(f"../shared/data is absent: no Flickr8k sample at {path}")
    return path


@pytest.fixture
def coco_sample() -> Path:
    path = SAMPLE_DIR / "coco" / "captions_sample.json"
    if not path.is_file():
        pytest.skip(f"../shared/data is absent: no COCO sample at {path}")
    return path


def test_real_flickr8k_sample(flickr8k_sample):
    splits, report = read_flickr8k(flickr8k_sample)
    assert list(splits) == ["all"]  # no split lists beside the sample
    images = splits["all"]
    assert len(images) == 60 and all(len(image.captions) == 5 for image in images)
    assert (report.entries, report.images, report.captions, report.malformed) == (300, 60, 300, [])
    assert report.summary() == (
        "Flickr8k.token.txt: 300 lines, 60 images with 300 captions kept, 0 malformed"
    )
    first = images[0]
    assert first.image_id == "218342358_1755a9cce1.jpg"
    assert first.captions[0] == "A cyclist wearing a red helmet is riding on the pavement ."
    assert first.captions[4] == "Person in blue shirt and red helmet riding bike down the road"
    assert first.image == str(flickr8k_sample.parent / "images" / "218342358_1755a9cce1.jpg")
    assert all(os.path.isfile(image.image) for image in images)
    assert len({image.image_id for image in images}) == 60


def test_flickr8k_sample_with_split_lists(flickr8k_sample, tmp_path):
    names = [image.image_id for image in read_flickr8k(flickr8k_sample)[0]["all"]]
    lists = {}
    for split, chosen in [
        ("train", names[:40]),
        ("validation", names[40:50]),
        ("test", names[50:]),
    ]:
        lists[split] = tmp_path / f"{split}.txt"
        lists[split].write_text("\n".join(chosen) + "\n", encoding="utf-8")
    splits, report = read_flickr8k(flickr8k_sample, split_files=lists)
    assert {split: len(images) for split, images in splits.items()} == {
        "train": 40,
        "validation": 10,
        "test": 10,
    }
    assert [image.image_id for image in splits["validation"]] == names[40:50]
    assert (report.images, report.captions, report.unassigned_images) == (60, 300, 0)


def test_real_coco_sample(coco_sample):
    images, report = read_coco_captions(coco_sample)
    assert len(images) == 40 and sum(len(image.captions) for image in images) == 200
    assert (report.entries, report.images, report.captions, report.malformed) == (200, 40, 200, [])
    assert report.summary() == (
        "captions_sample.json: 200 annotations, 40 images with 200 captions kept, 0 malformed"
    )
    first = images[0]
    assert first.image_id == "790"
    assert first.image == str(coco_sample.parent / "images" / "000000000790.jpg")
    assert "Group around a table waiting for a birthday cake to be served." in first.captions
    assert all(os.path.isfile(image.image) for image in images)
    assert all(image.image_id.isdigit() for image in images)


# ---------------------------------------------------------------- Flickr8k


TOKENS = (
    "\ufeffa.jpg#0\tA dog runs .\r\n"
    "a.jpg#1\t  A brown dog runs on grass .  \r\n"
    "b.jpg#0\tTwo children play .\n"
    "this line has no tab\n"
    "\n"
    "b.jpg#1\t   \n"
    "b.jpg\tno caption number\n"
    "gone.jpg#0\tA picture nobody kept .\n"
    "a.jpg#1\tA duplicate id .\n"
    "c.jpg#0\tA cat sleeps .\n"
    "d.jpg#0\tOnly listed in no split .\n"
)


@pytest.fixture
def flickr8k_dir(tmp_path) -> Path:
    (tmp_path / "Flickr8k.token.txt").write_text(TOKENS, encoding="utf-8")
    write_images(tmp_path / "Flicker8k_Dataset", "a.jpg", "b.jpg", "c.jpg", "d.jpg")
    return tmp_path


def test_flickr8k_reports_malformed_lines_and_missing_images(flickr8k_dir):
    splits, report = read_flickr8k(flickr8k_dir / "Flickr8k.token.txt")
    images = splits["all"]
    assert [image.image_id for image in images] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert images[0] == CaptionedImage(
        str(flickr8k_dir / "Flicker8k_Dataset" / "a.jpg"),
        ("A dog runs .", "A brown dog runs on grass ."),
        "a.jpg",
    )
    assert images[1].captions == ("Two children play .",)
    assert report.malformed == [
        ("line 4", "expected '<image>#<n><TAB><caption>', found no tab"),
        ("line 7", "caption id 'b.jpg' is not '<image file>#<number>'"),
        ("line 9", "duplicate caption id a.jpg#1 (first on line 2)"),
    ]
    assert (report.entries, report.images, report.captions) == (11, 4, 5)
    assert report.empty_captions == 1
    assert report.missing_images == ["gone.jpg"]
    assert report.summary() == (
        "Flickr8k.token.txt: 11 lines, 4 images with 5 captions kept, 3 malformed "
        "(line 4: expected '<image>#<n><TAB><caption>', found no tab; line 7: caption id "
        "'b.jpg' is not '<image file>#<number>'; line 9: duplicate caption id a.jpg#1 (first "
        "on line 2)); 1 empty caption dropped; 1 image missing on disk (gone.jpg)"
    )


def test_flickr8k_reports_lines_that_are_not_utf8(flickr8k_dir):
    token_file = flickr8k_dir / "Flickr8k.token.txt"
    token_file.write_bytes(b"a.jpg#0\tA dog .\nb.jpg#0\tA caf\xe9 .\nc.jpg#0\tA cat .")
    splits, report = read_flickr8k(token_file)
    assert [image.image_id for image in splits["all"]] == ["a.jpg", "c.jpg"]
    assert report.malformed == [("line 2", "invalid UTF-8 (byte 0xe9 at position 14)")]
    assert report.entries == 3


def test_flickr8k_uses_the_official_split_lists_beside_the_token_file(flickr8k_dir):
    (flickr8k_dir / "Flickr_8k.trainImages.txt").write_text("a.jpg\nb.jpg\n", encoding="utf-8")
    (flickr8k_dir / "Flickr_8k.devImages.txt").write_text("c.jpg\n\nnope.jpg\n", encoding="utf-8")
    (flickr8k_dir / "Flickr_8k.testImages.txt").write_text("gone.jpg\na.jpg\n", encoding="utf-8")
    splits, report = read_flickr8k(flickr8k_dir / "Flickr8k.token.txt")
    assert list(splits) == ["train", "validation", "test"]
    assert [image.image_id for image in splits["train"]] == ["a.jpg", "b.jpg"]
    assert [image.image_id for image in splits["validation"]] == ["c.jpg"]
    assert splits["test"] == []
    assert report.malformed[3:] == [
        ("Flickr_8k.devImages.txt line 3", "nope.jpg has no caption in Flickr8k.token.txt"),
        ("Flickr_8k.testImages.txt line 2", "a.jpg is already in the 'train' split"),
    ]
    assert report.missing_images == ["gone.jpg"]
    assert report.unassigned_images == 1  # d.jpg
    assert report.summary().endswith("; 1 image in no split")


def test_flickr8k_explicit_split_files_and_images_dir(flickr8k_dir, tmp_path):
    listing = tmp_path / "mine.txt"
    listing.write_text("c.jpg\n", encoding="utf-8")
    elsewhere = write_images(tmp_path / "photos", "c.jpg")
    splits, report = read_flickr8k(
        flickr8k_dir / "Flickr8k.token.txt", images_dir=elsewhere, split_files={"few": listing}
    )
    assert splits == {
        "few": [CaptionedImage(str(elsewhere / "c.jpg"), ("A cat sleeps .",), "c.jpg")]
    }
    assert report.unassigned_images == 4  # a, b, d and gone.jpg, which is not on disk either


def test_flickr8k_strict_mode_stops_at_the_first_problem(flickr8k_dir):
    with pytest.raises(DataFormatError, match=r"Flickr8k\.token\.txt, line 4: expected"):
        read_flickr8k(flickr8k_dir / "Flickr8k.token.txt", strict=True)
    clean = flickr8k_dir / "clean.txt"
    clean.write_text("a.jpg#0\tA dog .\ngone.jpg#0\tNobody .\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"image gone\.jpg is not on disk"):
        read_flickr8k(clean, strict=True)


def test_flickr8k_errors(flickr8k_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.txt"):
        read_flickr8k(flickr8k_dir / "nothing.txt")
    lonely = tmp_path / "lonely" / "Flickr8k.token.txt"
    lonely.parent.mkdir()
    lonely.write_text("a.jpg#0\tA dog .\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="Flicker8k_Dataset/"):
        read_flickr8k(lonely)
    (lonely.parent / "images").mkdir()
    with pytest.raises(DataFormatError, match=r"no usable captioned image.*images/a\.jpg"):
        read_flickr8k(lonely)
    with pytest.raises(FileNotFoundError, match="missing_list.txt"):
        read_flickr8k(
            flickr8k_dir / "Flickr8k.token.txt",
            split_files={"train": tmp_path / "missing_list.txt"},
        )


def test_verify_images_leaves_out_files_tensorflow_cannot_decode(flickr8k_dir):
    broken = flickr8k_dir / "Flicker8k_Dataset" / "b.jpg"
    broken.write_bytes(broken.read_bytes()[:-40])
    splits, report = read_flickr8k(flickr8k_dir / "Flickr8k.token.txt", verify_images=True)
    assert [image.image_id for image in splits["all"]] == ["a.jpg", "c.jpg", "d.jpg"]
    assert len(report.unreadable_images) == 1
    assert report.unreadable_images[0].startswith(f"{broken}: truncated or corrupt JPEG")
    assert "1 image unreadable (" in report.summary()


KAGGLE = (
    "\ufeffimage,caption\r\n"
    "a.jpg,A dog runs .\r\n"
    'a.jpg,"A dog , wet , shakes off water ."\n'
    "b.jpg,Two children , one in red , play .\n"
    "\n"
    "no comma on this line\n"
    ",A caption without its image .\n"
    "b.jpg,   \n"
    'c.jpg,"A sign that says "" open "" ."\n'
    "gone.jpg,A picture nobody kept .\n"
    "d.jpg,A caf\xe9 .\n"
)


@pytest.fixture
def kaggle_dir(tmp_path) -> Path:
    data = KAGGLE.encode("utf-8").replace("caf\xc3\xa9".encode("latin-1"), b"caf\xe9")
    (tmp_path / "captions.txt").write_bytes(data)
    write_images(tmp_path / "Images", "a.jpg", "b.jpg", "c.jpg", "d.jpg")
    return tmp_path


def test_kaggle_captions_csv_is_read_with_the_same_checks(kaggle_dir):
    splits, report = read_flickr8k(kaggle_dir / "captions.txt")
    images = splits["all"]
    assert [image.image_id for image in images] == ["a.jpg", "b.jpg", "c.jpg"]
    assert images[0] == CaptionedImage(
        str(kaggle_dir / "Images" / "a.jpg"),
        ("A dog runs .", "A dog , wet , shakes off water ."),
        "a.jpg",
    )
    assert images[1].captions == ("Two children , one in red , play .",)  # unquoted commas
    assert images[2].captions == ('A sign that says " open " .',)
    assert report.malformed == [
        ("line 6", "expected 'image,caption', found no comma"),
        ("line 7", "no image file name before the comma"),
        ("line 11", "invalid UTF-8 (byte 0xe9 at position 12)"),
    ]
    assert (report.entries, report.images, report.captions) == (11, 3, 4)
    assert report.empty_captions == 1
    assert report.missing_images == ["gone.jpg"]
    assert report.summary().startswith(
        "captions.txt: 11 lines, 3 images with 4 captions kept, 3 malformed (line 6: expected"
    )


def test_kaggle_captions_csv_strict_mode_and_split_lists(kaggle_dir):
    with pytest.raises(DataFormatError, match=r"captions\.txt, line 6: expected 'image,caption'"):
        read_flickr8k(kaggle_dir / "captions.txt", strict=True)
    (kaggle_dir / "Flickr_8k.trainImages.txt").write_text("a.jpg\nc.jpg\n", encoding="utf-8")
    (kaggle_dir / "Flickr_8k.testImages.txt").write_text("b.jpg\n", encoding="utf-8")
    splits, _ = read_flickr8k(kaggle_dir / "captions.txt")
    assert {split: [i.image_id for i in images] for split, images in splits.items()} == {
        "train": ["a.jpg", "c.jpg"],
        "test": ["b.jpg"],
    }


def test_real_kaggle_flickr8k_sample():
    path = SAMPLE_DIR / "flickr8k_1k" / "captions.txt"
    if not path.is_file():
        pytest.skip(f"../shared/data is absent: no Flickr8k captions.txt at {path}")
    splits, report = read_flickr8k(path)
    images = splits["all"]
    assert (report.entries, report.images, report.captions, report.malformed) == (
        5001,
        1000,
        5000,
        [],
    )
    assert all(len(image.captions) == 5 for image in images)
    first = images[0]
    assert first.image_id == "1000268201_693b08cb0e.jpg"
    assert first.captions[0] == (
        "A child in a pink dress is climbing up a set of stairs in an entry way ."
    )
    quoted = {c for image in images for c in image.captions if c.startswith("A dog shakes")}
    assert "A dog shakes its head near the shore , a red ball next to it ." in quoted


def test_summary_shows_at_most_five_of_each_list():
    report = CaptionReadReport(
        "x/cap.json",
        entries=9,
        entry_kind="annotations",
        images=1,
        captions=2,
        malformed=[(f"annotations[{i}]", "bad") for i in range(7)],
        missing_images=[f"{i}.jpg" for i in range(6)],
    )
    summary = report.summary()
    assert summary.startswith("cap.json: 9 annotations, 1 images with 2 captions kept, 7 malformed")
    assert "annotations[4]: bad; and 2 more)" in summary
    assert summary.endswith(
        "6 images missing on disk (0.jpg; 1.jpg; 2.jpg; 3.jpg; 4.jpg; and 1 more)"
    )


# ---------------------------------------------------------------- COCO


def coco_file(folder: Path, **changes) -> Path:
    data = {
        "info": {"description": "tiny"},
        "images": [
            {"id": 9, "file_name": "000000000009.jpg", "height": 4, "width": 6},
            {"id": 25, "file_name": "000000000025.jpg"},
            {"id": 30, "file_name": "000000000030.jpg"},
            {"id": 42, "file_name": "000000000042.jpg"},
        ],
        "annotations": [
            {"image_id": 9, "id": 1, "caption": "A plate of food. "},
            {"image_id": 25, "id": 2, "caption": "A giraffe eating leaves."},
            {"image_id": 9, "id": 3, "caption": "Broccoli and rice on a plate."},
            {"image_id": 7, "id": 4, "caption": "An orphan caption."},
            {"image_id": 25, "id": 5, "caption": "  "},
            {"image_id": 42, "id": 6, "caption": "A picture that is not on disk."},
        ],
    }
    data.update(changes)
    write_images(folder / "images", "000000000009.jpg", "000000000025.jpg", "000000000030.jpg")
    return write_json(folder / "captions_tiny.json", data)


def test_coco_reports_what_it_leaves_out(tmp_path):
    images, report = read_coco_captions(coco_file(tmp_path))
    assert images == [
        CaptionedImage(
            str(tmp_path / "images" / "000000000009.jpg"),
            ("A plate of food.", "Broccoli and rice on a plate."),
            "9",
        ),
        CaptionedImage(
            str(tmp_path / "images" / "000000000025.jpg"), ("A giraffe eating leaves.",), "25"
        ),
    ]
    assert report.malformed == [("annotations[3]", "image_id 7 is not in 'images'")]
    assert (report.entries, report.images, report.captions) == (6, 2, 3)
    assert (report.empty_captions, report.uncaptioned_images) == (1, 1)  # 30 has no caption
    assert report.missing_images == ["000000000042.jpg"]


def test_coco_images_dir(tmp_path):
    path = coco_file(tmp_path)
    elsewhere = write_images(tmp_path / "val2017", "000000000009.jpg")
    images, _ = read_coco_captions(path, images_dir=elsewhere)
    assert [image.image for image in images] == [str(elsewhere / "000000000009.jpg")]
    # The official layout: annotations/captions_val2017.json beside val2017/.
    (tmp_path / "annotations").mkdir()
    official = tmp_path / "annotations" / "captions_val2017.json"
    official.write_bytes(path.read_bytes())
    images, _ = read_coco_captions(official)
    assert [Path(image.image).parent.name for image in images] == ["val2017"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"annotations": None},
            "captions_tiny.json: 'annotations' must be a JSON list, found NoneType",
        ),
        ({"images": [{"id": 1}]}, r"images\[0\] has no 'file_name' key"),
        (
            {"annotations": [{"image_id": 9, "bbox": [1, 2, 3, 4]}]},
            "annotations.0. has no 'caption' key",
        ),
        ({"annotations": [{"caption": "x"}]}, r"annotations\[0\] has no 'image_id' key"),
        ({"images": ["a.jpg"]}, r"images\[0\] must be a JSON object with the key 'id', found str"),
    ],
)
def test_coco_wrong_shape_names_the_key(tmp_path, changes, message):
    with pytest.raises(DataFormatError, match=message):
        read_coco_captions(coco_file(tmp_path, **changes))


def test_coco_file_errors(tmp_path):
    path = coco_file(tmp_path)
    data = json.loads(path.read_text())
    del data["annotations"]
    write_json(path, data)
    with pytest.raises(
        DataFormatError, match="captions_tiny.json: the file has no 'annotations' key"
    ):
        read_coco_captions(path)
    write_json(path, [1, 2])
    with pytest.raises(
        DataFormatError, match="must be a JSON object with the key 'images', found list"
    ):
        read_coco_captions(path)
    path.write_text('{"images": [', encoding="utf-8")
    with pytest.raises(DataFormatError, match="captions_tiny.json: not a valid JSON file"):
        read_coco_captions(path)
    karpathy = write_json(tmp_path / "dataset_coco.json", {"images": [], "dataset": "coco"})
    with pytest.raises(DataFormatError, match="read_karpathy"):
        read_coco_captions(karpathy)
    with pytest.raises(FileNotFoundError, match="absent.json"):
        read_coco_captions(tmp_path / "absent.json")


# ---------------------------------------------------------------- Karpathy


def karpathy_entry(filename, split, *raws, **extra):
    sentences = [{"raw": raw, "tokens": raw.lower().strip(" .").split()} for raw in raws]
    return {"filename": filename, "split": split, "sentences": sentences, "imgid": 0, **extra}


def test_karpathy_coco_file(tmp_path):
    images_dir = write_images(
        tmp_path / "coco",
        "val2014/COCO_val2014_000000000042.jpg",
        "train2014/COCO_train2014_000000000009.jpg",
        "val2014/COCO_val2014_000000000073.jpg",
        "val2014/COCO_val2014_000000000074.jpg",
    )
    entries = [
        karpathy_entry(
            "COCO_val2014_000000000042.jpg", "val", "A man rides.", filepath="val2014", cocoid=42
        ),
        karpathy_entry(
            "COCO_train2014_000000000009.jpg", "train", "Food.", filepath="train2014", cocoid=9
        ),
        karpathy_entry(
            "COCO_val2014_000000000073.jpg", "restval", "A bike.", "", filepath="val2014", cocoid=73
        ),
        karpathy_entry(
            "COCO_val2014_000000000074.jpg", "test", "A dog.", filepath="val2014", cocoid=74
        ),
        karpathy_entry(
            "COCO_val2014_000000000099.jpg", "test", "Lost.", filepath="val2014", cocoid=99
        ),
    ]
    entries[3]["sentences"].append({"tokens": ["a", "small", "dog"]})
    path = write_json(tmp_path / "dataset_coco.json", {"images": entries, "dataset": "coco"})
    splits, report = read_karpathy(path, images_dir)
    assert list(splits) == ["train", "validation", "test"]
    assert [image.image_id for image in splits["train"]] == ["9", "73"]  # restval -> train
    assert splits["validation"] == [
        CaptionedImage(
            str(images_dir / "val2014" / "COCO_val2014_000000000042.jpg"), ("A man rides.",), "42"
        )
    ]
    assert splits["test"][0].captions == ("A dog.", "a small dog")
    assert report.missing_images == [os.path.join("val2014", "COCO_val2014_000000000099.jpg")]
    assert (report.entries, report.images, report.captions, report.empty_captions) == (5, 4, 5, 1)


def test_karpathy_flickr_file(tmp_path):
    images_dir = write_images(tmp_path / "Flicker8k_Dataset", "a.jpg", "b.jpg")
    path = write_json(
        tmp_path / "dataset_flickr8k.json",
        {
            "images": [
                karpathy_entry("a.jpg", "train", "A dog ."),
                karpathy_entry("b.jpg", "val", "A cat ."),
            ],
            "dataset": "flickr8k",
        },
    )
    splits, report = read_karpathy(path, images_dir)
    assert splits == {
        "train": [CaptionedImage(str(images_dir / "a.jpg"), ("A dog .",), "a.jpg")],
        "validation": [CaptionedImage(str(images_dir / "b.jpg"), ("A cat .",), "b.jpg")],
    }
    assert (
        report.summary()
        == "dataset_flickr8k.json: 2 images, 2 images with 2 captions kept, 0 malformed"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"split": "train", "sentences": []}, r"images\[0\] has no 'filename' key"),
        ({"filename": "a.jpg", "sentences": []}, r"images\[0\] has no 'split' key"),
        ({"filename": "a.jpg", "split": "train"}, r"images\[0\] has no 'sentences' key"),
        (
            {"filename": "a.jpg", "split": "train", "sentences": [{"sentid": 3}]},
            r"images\[0\]\['sentences'\]\[0\] has no 'raw' key",
        ),
    ],
)
def test_karpathy_wrong_shape_names_the_key(tmp_path, entry, message):
    path = write_json(tmp_path / "dataset_flickr8k.json", {"images": [entry], "dataset": "x"})
    with pytest.raises(DataFormatError, match=message):
        read_karpathy(path, tmp_path)


def test_karpathy_errors(tmp_path):
    coco = coco_file(tmp_path)
    with pytest.raises(DataFormatError, match="read_coco_captions"):
        read_karpathy(coco, tmp_path / "images")
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        read_karpathy(coco, tmp_path / "no_such_folder")
    empty = write_json(tmp_path / "dataset_flickr8k.json", {"images": [], "dataset": "flickr8k"})
    with pytest.raises(DataFormatError, match="no usable captioned image"):
        read_karpathy(empty, tmp_path)


def test_records_are_frozen():
    record = CaptionedImage("a.jpg", ("A dog .",), "a.jpg")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.image = "b.jpg"
