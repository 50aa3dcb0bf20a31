"""MNIST and Fashion-MNIST: find, download, verify and load them as the book's three splits.

**Formats.**

- IDX (LeCun's format, the files on the public mirrors): a 4-byte magic number (two zero bytes,
  a data-type code such as 0x08 for uint8, the number of dimensions), one big-endian uint32 per
  dimension, then the data, row-major. Each of the four files (`train-images-idx3-ubyte.gz`,
  `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`) is
  gzip-compressed. Fashion-MNIST uses the same names, format and sizes.
- `mnist.pkl.gz` (the file in Nielsen's repository): a gzip'd Python 2 pickle of three
  `(images, labels)` pairs, images float32 `(n, 784)`, labels int64 `(n,)`. It is read with a
  restricted unpickler that builds numpy arrays and nothing else, so a hostile file cannot run code.

**The split** (chapter 1): `train` is the first 50,000 training images, `validation` the last
10,000 training images, `test` the 10,000 test images. Images are float32 in [0, 1] of shape
`(n, 784)` (the uint8 pixels divided by 255), labels int32 of shape `(n,)`.

**Integrity.** Downloads are checked against the MD5 of the *decompressed* official files, so a
recompressed copy of the same data verifies too; a file that fails is deleted, never left under
its final name. Every problem a user can cause raises `DataError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import math
import os
import pickle
import shutil
import struct
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from tqdm import tqdm

from ._io import atomic_file
from .errors import DataError, FnbackpropError, ShapeError
from .registry import Registry

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
PKL_FILE = "mnist.pkl.gz"
SYSTEM_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
VALIDATION_SIZE = 10_000
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10
MAX_IDX_BYTES = 2**31  # no IDX file we read is anywhere near this; a bigger claim is hostile
MAX_DOWNLOAD_BYTES = 2**27  # the largest official .gz is 26 MB

_CHUNK = 2**20
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class Split(NamedTuple):
    """One split: `images` float32 `(n, 784)` in [0, 1], `labels` int32 `(n,)`."""

    images: np.ndarray
    labels: np.ndarray


class Splits(NamedTuple):
    """The book's three splits."""

    train: Split
    validation: Split
    test: Split


class DataFile(NamedTuple):
    """One file of a data set: its name, and the MD5 and size of its *decompressed* content
    (None where there is no official checksum)."""

    name: str
    md5: str | None = None
    size: int | None = None


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Everything fnbackprop knows about one data set; adding a data set is one of these.

    - `files`: what must be in its folder; `load(folder, dataset)` reads them as the book's
      three splits (`Splits`);
    - `env_var`: the environment variable naming its folder; `system_dirs`: folders a system
      package installs it in, looked at after the variable;
    - `mirrors`: base URLs to download `files` from, each verified against its MD5 and size;
      none: it is never downloaded, and `note` says how to get it;
    - `image_shape` and `classes`: the network needs prod(image_shape) inputs and at least
      `classes` outputs.
    """

    name: str
    files: tuple[DataFile, ...]
    load: Callable[[Path, Dataset], Splits]
    env_var: str = "FNBACKPROP_DATA"
    system_dirs: tuple[Path, ...] = ()
    mirrors: tuple[str, ...] = ()
    image_shape: tuple[int, int] = IMAGE_SHAPE
    classes: int = N_CLASSES
    note: str = ""

    @property
    def inputs(self) -> int:
        """Pixels per image: the input layer's size."""
        return math.prod(self.image_shape)

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files)


class FileCheck(NamedTuple):
    """The result of checking one data file: its path, whether it is good, and why not."""

    file: Path
    ok: bool
    reason: str


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


# --- IDX ---------------------------------------------------------------------------------------


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw, into a native-endian numpy array.

    The header is checked before any data are read, and the data are read in chunks, so a file
    whose header claims more than it holds is rejected without allocating the claim.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            opened = gzip.GzipFile(fileobj=raw) if gzipped else contextlib.nullcontext(raw)
            with opened as stream:
                return _parse_idx(stream, path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except _GZIP_ERRORS as err:
        raise DataError(f"{path}: unreadable or corrupt ({_one_line(err)})") from None


def _parse_idx(stream: BinaryIO, path: Path) -> np.ndarray:
    magic = _read_exact(stream, 4, path, "the IDX header")
    if magic[0] or magic[1]:
        raise DataError(f"{path}: not an IDX file (magic number 0x{magic.hex()})")
    dtype = _IDX_DTYPES.get(magic[2])
    if dtype is None:
        known = ", ".join(f"0x{code:02x}" for code in _IDX_DTYPES)
        raise DataError(f"{path}: unknown IDX data type code 0x{magic[2]:02x} (known: {known})")
    ndim = magic[3]
    if not 1 <= ndim <= 4:
        raise DataError(f"{path}: IDX header claims {ndim} dimensions, expected 1 to 4")
    dims = struct.unpack(f">{ndim}I", _read_exact(stream, 4 * ndim, path, "the IDX dimensions"))
    nbytes = math.prod(dims) * dtype.itemsize
    if nbytes > MAX_IDX_BYTES:
        raise DataError(
            f"{path}: IDX header claims shape {dims} ({nbytes} bytes), over the limit of "
            f"{MAX_IDX_BYTES} bytes"
        )
    payload = _read_exact(stream, nbytes, path, f"data for shape {dims}")
    if stream.read(1):
        raise DataError(f"{path}: trailing bytes after the data for shape {dims}")
    native = dtype.newbyteorder("=")
    return np.frombuffer(payload, dtype).reshape(dims).astype(native, copy=False)


def _read_exact(stream: BinaryIO, n: int, path: Path, what: str) -> bytearray:
    """Read exactly `n` bytes in chunks; a short stream is a truncated file."""
    buffer = bytearray()
    while len(buffer) < n:
        chunk = stream.read(min(_CHUNK, n - len(buffer)))
        if not chunk:
            raise DataError(f"{path}: truncated: {what} needs {n} bytes, found {len(buffer)}")
        buffer += chunk
    return buffer


def load_mnist_idx(data_dir: str | os.PathLike, *, dataset: str | Dataset = "mnist") -> Splits:
    """Load the four IDX files in `data_dir` as the book's train/validation/test splits."""
    return load_idx_splits(Path(data_dir), DATASETS.get(dataset))


def load_idx_splits(root: Path, dataset: Dataset) -> Splits:
    """A `Dataset` loader: the four IDX files of MNIST's layout as the book's three splits."""
    images, labels = _read_pair(root, "train", dataset)
    n_train = len(labels) - VALIDATION_SIZE
    if n_train <= 0:
        raise DataError(
            f"{root / FILES[0]}: {len(labels)} training images, need more than the "
            f"{VALIDATION_SIZE} held out for validation"
        )
    return Splits(
        train=Split(images[:n_train], labels[:n_train]),
        validation=Split(images[n_train:], labels[n_train:]),
        test=Split(*_read_pair(root, "t10k", dataset)),
    )


def _read_pair(root: Path, prefix: str, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    image_path = root / f"{prefix}-images-idx3-ubyte.gz"
    label_path = root / f"{prefix}-labels-idx1-ubyte.gz"
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != dataset.image_shape:
        shape = "x".join(map(str, dataset.image_shape))
        raise DataError(
            f"{image_path}: {dataset.name} images must be uint8 {shape}, found {images.dtype} "
            f"of shape {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{label_path}: labels must be 1-D uint8, found {labels.dtype} {labels.shape}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{image_path.name} has {len(images)} images but {label_path.name} has "
            f"{len(labels)} labels (in {root})"
        )
    _check_labels(labels, label_path, dataset.classes)
    pixels = images.reshape(len(images), -1).astype(np.float32)
    pixels /= np.float32(255)
    return pixels, labels.astype(np.int32)


def _check_labels(labels: np.ndarray, where: object, n_classes: int = N_CLASSES) -> None:
    bad = labels[(labels < 0) | (labels >= n_classes)]
    if bad.size:
        raise DataError(f"{where}: label {bad[0]} outside 0..{n_classes - 1}")


def one_hot(
    labels: ArrayLike, n_classes: int = N_CLASSES, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """Encode integer labels `(n,)` as rows of the identity `(n, n_classes)` (the book's `y`)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ShapeError(f"one_hot needs 1-D integer labels, got {labels.dtype} {labels.shape}")
    _check_labels(labels, "one_hot", n_classes)
    return np.eye(n_classes, dtype=dtype)[labels]


def expanded(split: Split, image_shape: tuple[int, int] = IMAGE_SHAPE) -> Split:
    """Chapter 6's expanded training data (network3's expand_mnist): every image followed by
    its copies shifted by one pixel up, down, left and right, the pixels moved in from the edge
    black (0), each with the image's label: 5 n examples from n (250,000 from MNIST's 50,000).

    Made on the fly (about a second for MNIST); the result is a new array, `split` is untouched.
    """
    n = len(split.labels)
    images = split.images.reshape(n, *image_shape)
    copies = [images]
    for axis, step in ((1, -1), (1, 1), (2, -1), (2, 1)):  # up, down, left, right
        shifted = np.roll(images, step, axis=axis)
        edge = [slice(None)] * 3
        edge[axis] = 0 if step == 1 else -1  # the row or column that wrapped round
        shifted[tuple(edge)] = 0
        copies.append(shifted)
    stacked = np.stack(copies, axis=1)  # (n, 5, h, w): each image beside its shifts
    return Split(
        stacked.reshape(5 * n, -1).astype(split.images.dtype, copy=False),
        np.repeat(split.labels, 5),
    )


# --- Nielsen's mnist.pkl.gz ----------------------------------------------------------------------

_reconstruct = np.empty(0).__reduce__()[0]
_frombuffer = np.empty(0).__reduce_ex__(5)[0]
_scalar = np.float32(0).__reduce__()[0]


def _new_empty_array(subtype: type, shape: tuple, dtype: bytes | str) -> np.ndarray:
    """`_reconstruct` as numpy's pickles call it: an empty array that `__setstate__` then fills."""
    if subtype is not np.ndarray or tuple(shape) != (0,):
        raise pickle.UnpicklingError("unexpected arguments to numpy's _reconstruct")
    return _reconstruct(subtype, shape, dtype)


_PICKLE_GLOBALS = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype} | {
    (f"{core}.{module}", name): function
    for core in ("numpy.core", "numpy._core")  # numpy 1's and numpy 2's names
    for module, name, function in (
        ("multiarray", "_reconstruct", _new_empty_array),
        ("multiarray", "scalar", _scalar),
        ("numeric", "_frombuffer", _frombuffer),  # protocol 5
    )
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays and refuses every other global."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file, encoding="latin1")  # Python 2's str held the arrays' bytes
        self.path = path

    def find_class(self, module: str, name: str) -> object:
        try:
            return _PICKLE_GLOBALS[module, name]
        except KeyError:
            raise DataError(
                f"refusing to load {module}.{name} from {self.path}: only numpy arrays are allowed"
            ) from None


def load_mnist_pkl(path: str | os.PathLike) -> Splits:
    """Load Nielsen's `mnist.pkl.gz` without executing any code from it."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as f:
            data = _ArraysOnlyUnpickler(f, path).load()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except DataError:
        raise
    except Exception as err:  # a malformed pickle can fail in many ways; all mean "bad file"
        raise DataError(f"{path}: not a readable mnist.pkl.gz ({_one_line(err)})") from None
    return Splits(*_check_pkl_structure(data, path))


def _check_pkl_structure(data: object, path: Path) -> list[Split]:
    expected = "a 3-tuple of (images float (n, 784), labels int (n,)) pairs"
    if not isinstance(data, tuple) or len(data) != 3:
        raise DataError(f"{path}: expected {expected}, found {type(data).__name__}")
    splits = []
    for name, pair in zip(Splits._fields, data, strict=True):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise DataError(f"{path}: {name} split is not an (images, labels) pair")
        images, labels = pair
        if not (
            isinstance(images, np.ndarray)
            and isinstance(labels, np.ndarray)
            and np.issubdtype(images.dtype, np.floating)
            and np.issubdtype(labels.dtype, np.integer)
            and images.ndim == 2
            and images.shape[1] == math.prod(IMAGE_SHAPE)
            and labels.shape == images.shape[:1]
        ):
            raise DataError(f"{path}: {name} split is not {expected}")
        if not np.all((images >= 0) & (images <= 1)):
            raise DataError(f"{path}: {name} images have pixels outside [0, 1]")
        _check_labels(labels, path)
        splits.append(Split(images.astype(np.float32), labels.astype(np.int32)))
    return splits


def write_mnist_pkl(splits: Splits, path: str | os.PathLike, *, compresslevel: int = 6) -> Path:
    """Write `splits` in the `mnist.pkl.gz` format (labels as int64), atomically."""
    path = Path(path)
    data = tuple((s.images.astype(np.float32), s.labels.astype(np.int64)) for s in splits)
    try:
        with (
            atomic_file(path) as f,
            gzip.GzipFile(path.stem, "wb", compresslevel, fileobj=f, mtime=0) as gz,
        ):
            pickle.dump(data, gz, protocol=4)
    except OSError as err:
        raise DataError(f"cannot write {path} ({_one_line(err)})") from None
    return path


# --- the data sets ------------------------------------------------------------------------------


def _load_pkl_splits(root: Path, dataset: Dataset) -> Splits:
    """A `Dataset` loader: Nielsen's mnist.pkl.gz in `root`."""
    return load_mnist_pkl(root / dataset.files[0].name)


_SIZES = (47_040_016, 60_008, 7_840_016, 10_008)


def _idx_files(*md5s: str) -> tuple[DataFile, ...]:
    return tuple(DataFile(n, md5, size) for n, md5, size in zip(FILES, md5s, _SIZES, strict=True))


MNIST = Dataset(
    name="mnist",
    files=_idx_files(
        "6bbc9ace898e44ae57da46a324031adb",
        "a25bea736e30d166cdddb491f175f624",
        "2646ac647ad5339dbf082846283269ea",
        "27ae3e4e09519cfbb04c329615203637",
    ),
    load=load_idx_splits,
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)
MNIST_PKL = Dataset(
    name="mnist_pkl",
    files=(DataFile(PKL_FILE),),
    load=_load_pkl_splits,
    note=f"put Nielsen's {PKL_FILE} (from his neural-networks-and-deep-learning repository) there",
)
FASHION_MNIST = Dataset(
    name="fashion_mnist",
    files=_idx_files(
        "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "9018921c3c673c538a1fc5bad174d6f9",
        "8181f5470baa50b63fa0f6fddb340f0a",
        "15d484375f8d13e6eb1aabb0c3f46965",
    ),
    load=load_idx_splits,
    env_var="FNBACKPROP_FASHION_DATA",
    system_dirs=(SYSTEM_FASHION_DIR,),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
)


def _as_dataset(obj) -> Dataset:
    if not isinstance(obj, Dataset):
        raise FnbackpropError(
            f"a data set is a name, 'package.module:NAME' or an fnbackprop.data.Dataset record, "
            f"not {type(obj).__name__}"
        )
    return obj


#: Every data set by name; `DATASETS.register(Dataset(...))` adds one.
DATASETS: Registry[Dataset] = Registry("dataset", _as_dataset, (MNIST, MNIST_PKL, FASHION_MNIST))


# --- where the data live, downloading and verifying ---------------------------------------------


def resolve_data_dir(data_dir: str | os.PathLike | None, dataset: str | Dataset) -> Path:
    """The folder for `dataset`: explicit `data_dir` > its env var > system copy > user cache."""
    ds = DATASETS.get(dataset)
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if from_env := os.environ.get(ds.env_var):
        return Path(from_env).expanduser()
    for folder in ds.system_dirs:
        if folder.is_dir():
            return folder
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(cache).expanduser() / "fnbackprop" / ds.name


def _where_to_put(ds: Dataset, root: Path) -> str:
    names = ", ".join(ds.file_names)
    if not root.is_dir():  # a mistyped FNBACKPROP_DATA or --data-dir, most likely
        return (
            f"{root} does not exist (it was not created): check the path, or put {names} in it "
            f"by hand, or point {ds.env_var} or --data-dir at a folder that holds them"
        )
    return (
        f"put {names} in {root} by hand, or point {ds.env_var} or --data-dir at a folder that "
        "holds them"
    )


def _check_file(path: Path, expected: DataFile) -> str | None:
    """Why the .gz at `path` does not decompress to the expected content, or None if it does."""
    if not path.is_file():
        return "missing"
    digest, size = hashlib.md5(usedforsecurity=False), 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                size += len(chunk)
                if size > expected.size:
                    return f"decompresses to more than the expected {expected.size} bytes"
                digest.update(chunk)
    except _GZIP_ERRORS as err:
        return f"not a valid gzip file ({_one_line(err)})"
    if size != expected.size:
        return f"decompresses to {size} bytes, expected {expected.size}"
    if digest.hexdigest() != expected.md5:
        return f"decompressed MD5 {digest.hexdigest()} is not the official {expected.md5}"
    return None


def verify(dataset: str | Dataset, data_dir: str | os.PathLike | None = None) -> list[FileCheck]:
    """Check that each file of `dataset` is present and holds the official content.

    A data set without official checksums is checked by loading it.
    """
    ds = DATASETS.get(dataset)
    root = resolve_data_dir(data_dir, ds)
    if any(f.md5 is None for f in ds.files):
        try:
            ds.load(root, ds)
        except DataError as err:
            return [FileCheck(root / ds.files[0].name, False, str(err))]
        return [
            FileCheck(root / f.name, True, "ok (loads as three splits; no official checksum)")
            for f in ds.files
        ]
    checks = [(root / f.name, _check_file(root / f.name, f)) for f in ds.files]
    return [FileCheck(path, reason is None, reason or "ok") for path, reason in checks]


def download(
    dataset: str | Dataset,
    dest_dir: str | os.PathLike,
    *,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
    timeout: float = 30,
) -> list[Path]:
    """Fetch the files of `dataset` into `dest_dir`, verified; return their paths.

    Files already present with the official content are kept. Each missing file is tried from
    each mirror in turn; a file that fails verification is deleted before the next mirror. A
    `dest_dir` that does not exist is created only once every file has arrived (they are fetched
    into a hidden folder beside it, renamed to `dest_dir` at the end): a failed download into a
    mistyped path leaves nothing behind.
    """
    ds = DATASETS.get(dataset)
    root = Path(dest_dir)
    if not ds.mirrors and mirrors is None:
        raise DataError(f"{ds.name} is never downloaded: {ds.note} (in {root})")
    mirrors = ds.mirrors if mirrors is None else tuple(mirrors)
    with _new_folder_if_complete(root) as folder:
        for expected in ds.files:
            if _check_file(folder / expected.name, expected) is not None:
                _fetch_from_mirrors(ds, expected, folder, mirrors, progress, timeout, root)
    return [root / name for name in ds.file_names]


@contextlib.contextmanager
def _new_folder_if_complete(root: Path) -> Iterator[Path]:
    """`root` if it is a folder; else a hidden temporary folder in the nearest folder above it
    that exists, renamed to `root` (its parents made) if the block succeeds, removed if not."""
    if root.is_dir():
        yield root
        return
    if root.exists():
        raise DataError(f"cannot create data folder {root} (a file of that name is in the way)")
    above = next(p for p in root.absolute().parents if p.exists())
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".part", dir=above))
    except OSError as err:
        raise DataError(f"cannot create data folder {root} ({_one_line(err)})") from None
    try:
        yield staging
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(root)
        except OSError as err:
            raise DataError(f"cannot create data folder {root} ({_one_line(err)})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already if it became `root`


_BAR_STYLE = {"unit": "B", "unit_scale": True, "leave": False}


class _MirrorFailed(Exception):
    """One mirror could not deliver one file; the next mirror is tried."""


def _fetch_from_mirrors(
    ds: Dataset,
    expected: DataFile,
    folder: Path,
    mirrors: Sequence[str],
    progress: bool,
    timeout: float,
    root: Path,
) -> None:
    """Fetch `expected` into `folder` (`root`, or the folder that will become it)."""
    failures = []
    name = expected.name
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            with atomic_file(folder / name) as f:
                _fetch(url, f, progress, timeout)
                if (reason := _check_file(Path(f.name), expected)) is not None:
                    raise _MirrorFailed(reason)
            return
        except _MirrorFailed as err:
            failures.append(f"{url}: {err}")
        except OSError as err:  # the folder, not the mirror: no point trying another
            raise DataError(
                f"cannot write {root / name} ({_one_line(err)}); {_where_to_put(ds, root)}"
            ) from None
    raise DataError(
        f"could not download {name} for {ds.name} ({'; '.join(failures) or 'no mirrors'}); "
        f"{_where_to_put(ds, root)}"
    )


def _fetch(url: str, out: BinaryIO, progress: bool, timeout: float) -> None:
    """Copy `url` into `out` with a progress bar; any network problem is a `_MirrorFailed`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            if total and total > MAX_DOWNLOAD_BYTES:
                raise _MirrorFailed(f"{total} bytes, more than any official file")
            desc = url.rsplit("/", 1)[-1]
            bar = tqdm(total=total, desc=desc, disable=not progress, file=sys.stderr, **_BAR_STYLE)
            with bar:
                received = 0
                while chunk := response.read(_CHUNK):
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise _MirrorFailed("more data than any official file")
                    out.write(chunk)
                    bar.update(len(chunk))
        out.flush()
    except urllib.error.HTTPError as err:
        err.close()
        raise _MirrorFailed(f"HTTP {err.code} {err.reason}") from None
    except (OSError, HTTPException, ValueError) as err:  # URLError, timeouts, resets, bad URLs
        raise _MirrorFailed(_one_line(getattr(err, "reason", err))) from None


def load_dataset(
    dataset: str | Dataset,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    progress: bool = True,
) -> Splits:
    """Find (downloading if allowed and needed) and load `dataset` as the book's three splits."""
    ds = DATASETS.get(dataset)
    root = resolve_data_dir(data_dir, ds)
    missing = [name for name in ds.file_names if not (root / name).is_file()]
    if missing and not ds.mirrors:
        raise DataError(
            f"{root / missing[0]} not found ({ds.name} is never downloaded): {ds.note}, "
            f"or point {ds.env_var} or --data-dir at its folder"
        )
    if missing and not download:
        raise DataError(
            f"{ds.name}: {', '.join(missing)} not found in {root}; run "
            f"`fnbackprop data download --dataset {ds.name}`, or {_where_to_put(ds, root)}"
        )
    if missing:
        _download(ds, root, progress=progress)
    return ds.load(root, ds)


_download = download  # `load_dataset`'s `download` flag shadows the function inside it
