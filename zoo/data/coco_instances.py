"""Reader of COCO instance annotations: the object boxes that score attention on real photos.

`read_coco_instances` reads ``instances_val2017.json`` (or the shared
sample's ``instances_sample.json``) into `ImageObjects` per image id, with the
caption readers' report of what was left out; `instances_beside` finds the
file that goes with a captions file.
"""

from __future__ import annotations

import dataclasses
import os

from zoo.data.caption_readers import CaptionReadReport, _load_json, _Reading

__all__ = ["ImageObjects", "instances_beside", "read_coco_instances"]


@dataclasses.dataclass(frozen=True)
class ImageObjects:
    """The annotated objects of one image (COCO instances), for scoring attention.

    Attributes:
        width, height: the image's size in pixels, as the annotations give it.
        boxes: ``(category name, (x0, y0, x1, y1))`` in pixels, end exclusive.
    """

    width: float
    height: float
    boxes: tuple[tuple[str, tuple[float, float, float, float]], ...]


def instances_beside(captions_json: str | os.PathLike) -> str | None:
    """The COCO instances file that goes with a captions file, if it is there.

    ``captions_val2017.json`` -> ``instances_val2017.json`` in the same folder
    (COCO's own naming, and the shared sample's).
    """
    folder, name = os.path.split(os.fspath(captions_json))
    if not name.startswith("captions"):
        return None
    path = os.path.join(folder, "instances" + name.removeprefix("captions"))
    return path if os.path.isfile(path) else None


def read_coco_instances(
    json_path: str | os.PathLike,
) -> tuple[dict[str, ImageObjects], CaptionReadReport]:
    """Reads a COCO instances file (``instances_val2017.json``): each image's object boxes.

    Uses ``images`` (``id``, ``width``, ``height``), ``categories`` (``id``,
    ``name``) and ``annotations`` (``image_id``, ``category_id``, ``bbox`` as
    ``[x, y, width, height]``); segmentations are ignored. An annotation with
    an unknown image or category, or a box that is not four non-negative
    numbers, is malformed and left out (reported as ``annotations[i]``).

    Returns:
        ``(objects, report)``: COCO image id (a string, as `read_coco_captions`
        gives it) -> `ImageObjects`, for every image listed (with no boxes when
        none is annotated), and the report (entries counted in annotations).

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not JSON, or a key missing (named in the message).
    """
    reading = _Reading(json_path, "annotations", strict=False)
    path = reading.path
    data = _load_json(path)
    images = reading.list_field(data, "images", None)
    categories = reading.list_field(data, "categories", None)
    annotations = reading.list_field(data, "annotations", None)
    names = {
        reading.field(c, "id", f"categories[{i}]"): str(
            reading.field(c, "name", f"categories[{i}]")
        )
        for i, c in enumerate(categories)
    }
    sizes: dict[str, tuple[float, float]] = {}
    for i, entry in enumerate(images):
        where = f"images[{i}]"
        image_id = str(reading.field(entry, "id", where))
        width, height = reading.field(entry, "width", where), reading.field(entry, "height", where)
        if not all(isinstance(v, int | float) and v > 0 for v in (width, height)):
            reading.malformed(
                where, f"width and height must be positive numbers: {width!r}, {height!r}"
            )
            continue
        sizes[image_id] = (float(width), float(height))
    boxes: dict[str, list] = {image_id: [] for image_id in sizes}
    for i, entry in enumerate(annotations):
        where = f"annotations[{i}]"
        image_id = str(reading.field(entry, "image_id", where))
        category = reading.field(entry, "category_id", where)
        box = reading.field(entry, "bbox", where)
        reading.report.entries += 1
        if image_id not in boxes:
            reading.malformed(where, f"image_id {image_id} is not in 'images'")
        elif category not in names:
            reading.malformed(where, f"category_id {category} is not in 'categories'")
        elif not (
            isinstance(box, list)
            and len(box) == 4
            and all(isinstance(v, int | float) and v >= 0 for v in box)
        ):
            reading.malformed(where, f"bbox is not [x, y, width, height]: {box!r:.60}")
        else:
            x, y, w, h = (float(v) for v in box)
            boxes[image_id].append((names[category], (x, y, x + w, y + h)))
    objects = {
        image_id: ImageObjects(*sizes[image_id], tuple(found)) for image_id, found in boxes.items()
    }
    reading.report.images = len(objects)
    reading.report.boxes = sum(len(found) for found in boxes.values())
    return objects, reading.report
