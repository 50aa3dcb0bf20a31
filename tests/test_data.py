"""Tests for fnbackprop.data: IDX parsing, the book's split, the safe pickle loader, downloads."""

import dataclasses
import functools
import gzip
import http.server
import math
import os
import pickle
import socket
import struct
import threading
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import examples, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fnbackprop import _io, data
from fnbackprop.data import (
    DATASETS,
    FILES,
    DataError,
    Split,
    Splits,
    download,
    load_dataset,
    load_mnist_idx,
    load_mnist_pkl,
    one_hot,
    read_idx,
    resolve_data_dir,
    verify,
    write_mnist_pkl,
)
from fnbackprop.errors import FnbackpropError, ShapeError

REPO = Path(__file__).resolve().parents[1]
SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
FUZZ = settings(
    max_examples=examples(250), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- helpers -----------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, code: int | None = None) -> bytes:
    """The IDX encoding of `array` (big-endian data), written independently of the reader."""
    code = IDX_CODES[array.dtype.str[1:]] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def reference_parse(blob: bytes) -> np.ndarray | None:
    """What a correct reader returns for `blob`, by a simple all-at-once parse; None if invalid."""
    if blob[:2] == b"\x1f\x8b":
        try:
            blob = gzip.decompress(blob)
        except (OSError, EOFError, zlib.error):
            return None
    codes = {code: np.dtype(">" + kind) for kind, code in IDX_CODES.items()}
    if len(blob) < 4 or blob[0] or blob[1] or blob[2] not in codes or not 1 <= blob[3] <= 4:
        return None
    ndim, dtype = blob[3], codes[blob[2]]
    if len(blob) < 4 + 4 * ndim:
        return None
    dims = struct.unpack(f">{ndim}I", blob[4 : 4 + 4 * ndim])
    body = blob[4 + 4 * ndim :]
    if len(body) != math.prod(dims) * dtype.itemsize:
        return None
    return np.frombuffer(body, dtype).reshape(dims)


def assert_reads_like_reference(path: Path, blob: bytes) -> None:
    path.write_bytes(blob)
    expected = reference_parse(blob)
    try:
        got = read_idx(path)
    except DataError as err:
        assert "\n" not in str(err)
        assert expected is None, f"rejected a valid file: {err}"
        return
    assert expected is not None, f"accepted an invalid file as {got.dtype} {got.shape}"
    assert got.shape == expected.shape and got.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, expected)


def one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def write_idx_dir(root: Path, n_train: int = 10_003, n_test: int = 3, **overrides) -> Path:
    """Four small synthetic IDX .gz files: pixel [i, 0, 0] and label i are i mod 256 and 10."""
    root.mkdir(parents=True, exist_ok=True)

    def images(n):
        out = np.zeros((n, 28, 28), np.uint8)
        out[:, 0, 0] = np.arange(n) % 256
        return out

    arrays = {
        FILES[0]: images(n_train),
        FILES[1]: (np.arange(n_train) % 10).astype(np.uint8),
        FILES[2]: images(n_test),
        FILES[3]: (np.arange(n_test) % 10).astype(np.uint8),
    }
    arrays.update({FILES[int(key[1:])]: value for key, value in overrides.items()})
    for name, array in arrays.items():
        (root / name).write_bytes(gzip.compress(idx_bytes(array), compresslevel=1))
    return root


# --- the real MNIST and Fashion-MNIST ----------------------------------------------------------


def test_mnist_raw_files_match_the_readme(mnist_dir: Path):
    train_labels = read_idx(mnist_dir / FILES[1])
    test_labels = read_idx(mnist_dir / FILES[3])
    assert read_idx(mnist_dir / FILES[2]).shape == (10_000, 28, 28)
    assert train_labels.shape == (60_000,) and test_labels.shape == (10_000,)
    assert train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(train_labels).tolist() == TRAIN_COUNTS
    assert np.bincount(test_labels).tolist() == TEST_COUNTS


def test_mnist_splits_are_the_books(mnist: Splits, mnist_dir: Path):
    assert [len(split.labels) for split in mnist] == [50_000, 10_000, 10_000]
    for split in mnist:
        assert split.images.dtype == np.float32 and split.labels.dtype == np.int32
        assert split.images.shape == (len(split.labels), 784)
        assert split.images.min() == 0.0 and split.images.max() == 1.0
    raw = read_idx(mnist_dir / FILES[0]).reshape(60_000, 784)
    np.testing.assert_array_equal(mnist.validation.images, raw[50_000:] / np.float32(255))
    np.testing.assert_array_equal(mnist.train.images[:5], raw[:5] / np.float32(255))
    labels = np.concatenate([mnist.train.labels, mnist.validation.labels])
    assert np.bincount(labels).tolist() == TRAIN_COUNTS
    assert mnist.test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist.test.labels).tolist() == TEST_COUNTS


def test_fashion_mnist_loads_like_mnist(fashion_dir: Path):
    fashion = load_dataset("fashion_mnist", fashion_dir, download=False)
    assert [split.images.shape[0] for split in fashion] == [50_000, 10_000, 10_000]
    assert all(split.images.shape[1] == 784 for split in fashion)
    labels = np.concatenate([fashion.train.labels, fashion.validation.labels])
    assert np.bincount(labels, minlength=10).tolist() == [6_000] * 10
    assert all(split.labels.min() >= 0 and split.labels.max() <= 9 for split in fashion)
    assert all(split.images.dtype == np.float32 for split in fashion)


def test_verify_accepts_the_official_mnist(mnist_dir: Path):
    assert [check.ok for check in verify("mnist", mnist_dir)] == [True] * 4


def test_verify_accepts_the_official_fashion_mnist(fashion_dir: Path):
    assert [check.ok for check in verify("fashion_mnist", fashion_dir)] == [True] * 4


def test_verify_names_missing_and_tampered_files(tmp_path: Path, mnist_dir: Path):
    for name in FILES[:2]:
        (tmp_path / name).symlink_to(mnist_dir / name)
    labels = bytearray(gzip.decompress((mnist_dir / FILES[3]).read_bytes()))
    labels[-1] = (labels[-1] + 1) % 10
    (tmp_path / FILES[3]).write_bytes(gzip.compress(bytes(labels)))
    checks = {check.file.name: check for check in verify("mnist", tmp_path)}
    assert [checks[name].ok for name in FILES] == [True, True, False, False]
    assert checks[FILES[2]].reason == "missing"
    assert "MD5" in checks[FILES[3]].reason


# --- Nielsen's mnist.pkl.gz --------------------------------------------------------------------


def test_pkl_round_trip(tmp_path: Path, mnist: Splits):
    write_mnist_pkl(mnist, tmp_path / "mnist.pkl.gz", compresslevel=1)
    assert os.listdir(tmp_path) == ["mnist.pkl.gz"]
    loaded = load_dataset("mnist_pkl", tmp_path)
    for got, want in zip(loaded, mnist, strict=True):
        assert got.images.dtype == np.float32 and got.labels.dtype == np.int32
        np.testing.assert_array_equal(got.images, want.images)
        np.testing.assert_array_equal(got.labels, want.labels)


def _py2_array(array: np.ndarray) -> bytes:
    """Pickle opcodes for `array` as Python 2's cPickle wrote them (protocol 2, str data)."""
    assert array.dtype.byteorder in "<|="
    shape = b"(" + b"".join(b"J" + struct.pack("<i", n) for n in array.shape) + b"t"
    dtype = b"cnumpy\ndtype\nU\x02" + array.dtype.str[1:].encode() + b"K\x00K\x01\x87R"
    dtype += b"(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    raw = array.tobytes()
    state = b"(K\x01" + shape + dtype + b"\x89T" + struct.pack("<I", len(raw)) + raw + b"tb"
    return b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R" + state


def test_pkl_reads_python2_pickles(tmp_path: Path):
    images = np.linspace(0, 1, 2 * 784, dtype=np.float32).reshape(2, 784)
    labels = np.array([3, 9], np.int64)
    pair = b"(" + _py2_array(images) + _py2_array(labels) + b"t"
    (tmp_path / "mnist.pkl.gz").write_bytes(gzip.compress(b"\x80\x02(" + pair * 3 + b"t."))
    for split in load_mnist_pkl(tmp_path / "mnist.pkl.gz"):
        np.testing.assert_array_equal(split.images, images)
        assert split.labels.tolist() == [3, 9] and split.labels.dtype == np.int32
    assert verify("mnist_pkl", tmp_path)[0].ok
    (tmp_path / "mnist.pkl.gz").write_bytes(b"junk")
    assert not verify("mnist_pkl", tmp_path)[0].ok


class _WritesMarker:
    def __init__(self, marker: Path, how: str):
        self.marker, self.how = marker, how

    def __reduce__(self):
        if self.how == "os.system":
            return os.system, (f"touch {self.marker}",)
        return Path.write_text, (self.marker, "pwned")


@pytest.mark.parametrize("how", ["os.system", "pathlib"])
def test_pkl_refuses_code(tmp_path: Path, how: str):
    marker = tmp_path / "marker"
    labels = np.zeros(1, np.int64)
    payload = ((_WritesMarker(marker, how), labels),) * 3
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(payload, protocol=2)))
    with pytest.raises(DataError) as excinfo:
        load_mnist_pkl(path)
    one_line_error(excinfo, "refusing to load", str(path), "only numpy arrays are allowed")
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"train": 1},
        (1, 2),
        ((np.zeros((2, 784), np.float32), np.zeros(2, np.int64)),) * 2,
        ((np.zeros((2, 783), np.float32), np.zeros(2, np.int64)),) * 3,
        ((np.zeros((2, 784), np.float32), np.zeros(3, np.int64)),) * 3,
        ((np.zeros((2, 784), np.float32), np.full(2, 10, np.int64)),) * 3,
        ((np.full((2, 784), 2, np.float32), np.zeros(2, np.int64)),) * 3,
        ((np.zeros((2, 784), object), np.zeros(2, np.int64)),) * 3,
        ((np.zeros((2, 784), np.float32), [0, 1]),) * 3,
    ],
    ids=["dict", "pair", "two-splits", "783", "counts", "label-10", "pixel-2", "object", "list"],
)
def test_pkl_rejects_wrong_structure(tmp_path: Path, payload):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(payload, protocol=4)))
    with pytest.raises(DataError) as excinfo:
        load_mnist_pkl(path)
    one_line_error(excinfo, str(path))


# mtime=0: a gzip header holds the time it was made, and the test's id must not change with it
# (the worker processes each collect the suite and must find the same tests)
@pytest.mark.parametrize("blob", [b"", b"not gzip", gzip.compress(b"\x80\x04garbage", mtime=0)])
def test_pkl_rejects_broken_files(tmp_path: Path, blob: bytes):
    (tmp_path / "mnist.pkl.gz").write_bytes(blob)
    with pytest.raises(DataError):
        load_mnist_pkl(tmp_path / "mnist.pkl.gz")
    with pytest.raises(DataError, match="file not found"):
        load_mnist_pkl(tmp_path / "absent.pkl.gz")


# --- IDX: valid files, rejections, fuzzing -----------------------------------------------------


@pytest.mark.parametrize("kind", list(IDX_CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_every_dtype(tmp_path: Path, kind: str, compress: bool):
    array = (np.arange(24) - 7).astype(kind).reshape(2, 3, 4)
    blob = idx_bytes(array)
    (tmp_path / "x.idx").write_bytes(gzip.compress(blob) if compress else blob)
    got = read_idx(tmp_path / "x.idx")
    assert got.dtype == np.dtype(kind) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


def _gz_with_bad_crc(blob: bytes) -> bytes:
    packed = bytearray(gzip.compress(blob))
    packed[-8] ^= 0xFF
    return bytes(packed)


VALID = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
BROKEN_IDX = {
    "wrong-magic": (b"\x01" + VALID[1:], "not an IDX file"),
    "unknown-dtype": (VALID[:2] + b"\x0a" + VALID[3:], "unknown IDX data type code 0x0a"),
    "zero-dims": (VALID[:3] + b"\x00" + VALID[4:], "0 dimensions"),
    "five-dims": (VALID[:3] + b"\x05" + VALID[4:], "5 dimensions"),
    "short-header": (VALID[:3], "truncated"),
    "short-dims": (VALID[:9], "truncated"),
    "truncated": (VALID[:-1], "truncated"),
    "trailing": (VALID + b"\x00", "trailing bytes"),
    "gz-truncated": (gzip.compress(VALID)[:-5], "corrupt"),
    "gz-crc": (_gz_with_bad_crc(VALID), "CRC"),
    "gz-truncated-data": (gzip.compress(VALID[:-1]), "truncated"),
    "gz-trailing": (gzip.compress(VALID + b"\x07"), "trailing bytes"),
}


@pytest.mark.parametrize("case", list(BROKEN_IDX))
def test_read_idx_rejects(tmp_path: Path, case: str):
    blob, fragment = BROKEN_IDX[case]
    path = tmp_path / "broken-idx1-ubyte.gz"
    path.write_bytes(blob)
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    one_line_error(excinfo, str(path), fragment)


def test_read_idx_missing_file(tmp_path: Path):
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "absent")


@pytest.mark.parametrize("dims", [(2**30, 2**30), (2**16, 2**16, 2**16, 2**16), (2**31 - 1,)])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_huge_claims_fail_fast(tmp_path: Path, dims: tuple, compress: bool):
    blob = bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    blob = blob + bytes(100 - len(blob))
    (tmp_path / "huge").write_bytes(gzip.compress(blob) if compress else blob)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"over the limit|truncated"):
            read_idx(tmp_path / "huge")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # refused before anything the size of the claim is allocated (the file holds 100 bytes, so
    # nothing else could take time); no wall-clock bound, which a busy machine could break
    assert peak < 8 * 2**20


idx_arrays = st.builds(
    lambda kind, shape, seed: (
        np.random.default_rng(seed).integers(-100, 100, size=shape).astype(kind)
    ),
    st.sampled_from(list(IDX_CODES)),
    st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple),
    st.integers(0, 2**16),
)
mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate"]),
        st.integers(0, 10_000),
        st.integers(1, 255),
    ),
    min_size=1,
    max_size=4,
)


@FUZZ
@given(blob=st.one_of(st.binary(max_size=80), st.binary(max_size=80).map(b"\x1f\x8b".__add__)))
def test_fuzz_random_bytes(tmp_path_factory, blob: bytes):
    assert_reads_like_reference(tmp_path_factory.mktemp("fuzz") / "random", blob)


@FUZZ
@given(array=idx_arrays, compress=st.booleans(), edits=mutations)
def test_fuzz_mutated_idx(tmp_path_factory, array: np.ndarray, compress: bool, edits: list):
    blob = idx_bytes(array)
    blob = mutate(gzip.compress(blob, mtime=0) if compress else blob, edits)
    assert_reads_like_reference(tmp_path_factory.mktemp("fuzz") / "mutated", blob)


# --- load_mnist_idx on small synthetic files ---------------------------------------------------


def test_load_mnist_idx_splits_synthetic_files(tmp_path: Path):
    splits = load_mnist_idx(write_idx_dir(tmp_path))
    assert [len(split.labels) for split in splits] == [3, 10_000, 3]
    assert splits.train.labels.tolist() == [0, 1, 2]
    assert splits.validation.labels[0] == 3
    assert splits.validation.images[0, 0] == np.float32(3) / np.float32(255)
    assert splits.test.images.shape == (3, 784) and splits.test.images.dtype == np.float32


BAD_DIRS = {
    "train-counts": ({"f1": np.zeros(10_002, np.uint8)}, "10003 images but"),
    "test-counts": ({"f3": np.zeros(4, np.uint8)}, "3 images but"),
    "image-size": ({"f2": np.zeros((3, 27, 27), np.uint8)}, "28x28"),
    "image-dtype": ({"f2": np.zeros((3, 28, 28), np.float32)}, "uint8"),
    "label-range": ({"f3": np.array([0, 10, 1], np.uint8)}, "label 10 outside 0..9"),
    "label-shape": ({"f3": np.zeros((3, 1), np.uint8)}, "1-D"),
    "too-few": ({"f0": np.zeros((5, 28, 28), np.uint8), "f1": np.zeros(5, np.uint8)}, "need more"),
}


@pytest.mark.parametrize("case", list(BAD_DIRS))
def test_load_mnist_idx_rejects(tmp_path: Path, case: str):
    overrides, fragment = BAD_DIRS[case]
    with pytest.raises(DataError) as excinfo:
        load_mnist_idx(write_idx_dir(tmp_path, **overrides))
    one_line_error(excinfo, fragment)


def test_load_mnist_idx_missing_file(tmp_path: Path):
    write_idx_dir(tmp_path)
    (tmp_path / FILES[3]).unlink()
    with pytest.raises(DataError, match=f"{FILES[3]}: file not found"):
        load_mnist_idx(tmp_path)


# --- one_hot, resolve_data_dir, load_dataset ---------------------------------------------------


def test_one_hot():
    got = one_hot(np.array([3, 0, 9]))
    assert got.shape == (3, 10) and got.dtype == np.float32
    assert got.argmax(axis=1).tolist() == [3, 0, 9] and got.sum() == 3
    assert one_hot([1], n_classes=2, dtype=np.int32).tolist() == [[0, 1]]
    with pytest.raises(DataError):
        one_hot(np.array([10]))
    with pytest.raises(DataError):
        one_hot(np.array([-1]))
    with pytest.raises(ShapeError):
        one_hot(np.array([[1]]))


def _replace_dataset(monkeypatch, name: str, **changes) -> None:
    """Replace the built-in data set `name` by a copy of its record with `changes`."""
    record = dataclasses.replace(DATASETS.get(name), **changes)
    monkeypatch.setitem(DATASETS._builtins, name, record)


def test_the_data_sets_are_records_by_name():
    assert DATASETS.builtin_names() == ("mnist", "mnist_pkl", "fashion_mnist")
    assert DATASETS.get("mnist") is data.MNIST
    assert DATASETS.get("mnist_pkl") is data.MNIST_PKL
    assert DATASETS.get("fashion_mnist") is data.FASHION_MNIST
    for ds in (data.MNIST, data.FASHION_MNIST):
        assert ds.file_names == FILES
        assert ds.inputs == 784 and ds.classes == 10 and ds.mirrors
        assert all(f.md5 and len(f.md5) == 32 and f.size for f in ds.files)
    assert data.MNIST.files != data.FASHION_MNIST.files  # different checksums
    assert data.MNIST_PKL.file_names == (data.PKL_FILE,) and not data.MNIST_PKL.mirrors
    assert data.MNIST.env_var == data.MNIST_PKL.env_var == "FNBACKPROP_DATA"
    assert data.FASHION_MNIST.env_var == "FNBACKPROP_FASHION_DATA"
    assert data.FASHION_MNIST.system_dirs == (data.SYSTEM_FASHION_DIR,) == (SYSTEM_FASHION,)


@pytest.mark.parametrize("old", ["fashion-mnist", "Fashion-MNIST"])
def test_old_dataset_spellings_are_refused_with_the_name_they_resemble(old):
    with pytest.raises(FnbackpropError, match="did you mean 'fashion_mnist'") as excinfo:
        resolve_data_dir(None, old)
    one_line_error(excinfo, "unknown dataset", "valid names: mnist, mnist_pkl, fashion_mnist")


@pytest.fixture
def clean_env(monkeypatch, tmp_path: Path):
    for name in ("FNBACKPROP_DATA", "FNBACKPROP_FASHION_DATA", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _replace_dataset(monkeypatch, "fashion_mnist", system_dirs=(tmp_path / "no-system-copy",))
    return monkeypatch


@pytest.mark.parametrize("dataset", DATASETS.builtin_names())
def test_resolve_data_dir_precedence(clean_env, tmp_path: Path, dataset: str):
    env = "FNBACKPROP_FASHION_DATA" if dataset == "fashion_mnist" else "FNBACKPROP_DATA"
    assert resolve_data_dir(None, dataset) == tmp_path / "home/.cache/fnbackprop" / dataset
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(None, dataset) == tmp_path / "xdg/fnbackprop" / dataset
    clean_env.setenv(env, str(tmp_path / "env"))
    assert resolve_data_dir(None, dataset) == tmp_path / "env"
    assert resolve_data_dir(str(tmp_path / "explicit"), dataset) == tmp_path / "explicit"


def test_resolve_data_dir_prefers_the_system_fashion_copy(clean_env, tmp_path: Path):
    system = tmp_path / "system"
    system.mkdir()
    _replace_dataset(clean_env, "fashion_mnist", system_dirs=(tmp_path / "absent", system))
    assert resolve_data_dir(None, "fashion_mnist") == system
    assert resolve_data_dir(None, "mnist") == tmp_path / "home/.cache/fnbackprop/mnist"
    clean_env.setenv("FNBACKPROP_FASHION_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(None, "fashion_mnist") == tmp_path / "env"


def test_unknown_dataset_lists_the_valid_names():
    for call in (
        lambda: resolve_data_dir(None, "cifar"),
        lambda: load_dataset("cifar"),
        lambda: verify("cifar", "."),
        lambda: download("cifar", "."),
    ):
        with pytest.raises(FnbackpropError, match="fashion_mnist") as excinfo:
            call()
        one_line_error(excinfo, "unknown dataset 'cifar'", "valid names: mnist, mnist_pkl")


def test_a_dataset_without_mirrors_is_never_downloaded(tmp_path: Path):
    with pytest.raises(DataError) as excinfo:
        download("mnist_pkl", tmp_path / "d")
    one_line_error(excinfo, "mnist_pkl is never downloaded", "mnist.pkl.gz", "Nielsen")
    assert not (tmp_path / "d").exists()


def test_load_dataset_without_files(tmp_path: Path):
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist_pkl", tmp_path)
    one_line_error(excinfo, str(tmp_path / "mnist.pkl.gz"), "FNBACKPROP_DATA", "--data-dir")
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", tmp_path, download=False)
    one_line_error(excinfo, str(tmp_path), FILES[0], "FNBACKPROP_DATA", "--data-dir")


# --- downloads from a local HTTP server --------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def mirror(tmp_path_factory, mnist_dir: Path):
    """A local server with mirrors `good/` (the real files), and bad copies of the test labels."""
    root = tmp_path_factory.mktemp("mirror")
    (root / "good").mkdir()
    for name in FILES:
        (root / "good" / name).symlink_to(mnist_dir / name)
    labels = bytearray(gzip.decompress((mnist_dir / FILES[3]).read_bytes()))
    labels[100] = (labels[100] + 1) % 10
    bad = {
        "tampered": gzip.compress(bytes(labels)),
        "truncated": (mnist_dir / FILES[3]).read_bytes()[:-100],
        "bomb": gzip.compress(bytes(labels) + bytes(10**6)),
        "not-gzip": bytes(labels),
    }
    for kind, blob in bad.items():
        (root / kind).mkdir()
        (root / kind / FILES[3]).write_bytes(blob)
    handler = functools.partial(_QuietHandler, directory=str(root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}/"
        server.shutdown()
    thread.join()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _seed(dest: Path, mnist_dir: Path, names=FILES[:3]) -> Path:
    """Link the big files into `dest` so that only the test labels need downloading."""
    dest.mkdir()
    for name in names:
        (dest / name).symlink_to(mnist_dir / name)
    return dest


def test_download_fetches_and_verifies(tmp_path: Path, mirror: str, mnist: Splits, monkeypatch):
    dest = tmp_path / "new" / "mnist"
    paths = download("mnist", dest, mirrors=[mirror + "good"], progress=False)
    assert paths == [dest / name for name in FILES]
    assert sorted(os.listdir(dest)) == sorted(FILES)
    assert all(check.ok for check in verify("mnist", dest))
    # present files are kept, so loading needs no mirror at all
    _replace_dataset(monkeypatch, "mnist", mirrors=(_closed_port_url(),))
    loaded = load_dataset("mnist", dest, progress=False)
    np.testing.assert_array_equal(loaded.test.images, mnist.test.images)


def test_load_dataset_downloads_missing_files(tmp_path, mirror, mnist_dir, monkeypatch, capsys):
    _replace_dataset(monkeypatch, "mnist", mirrors=(mirror + "good",))
    dest = _seed(tmp_path / "d", mnist_dir)
    splits = load_dataset("mnist", dest)
    assert splits.test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert (dest / FILES[3]).is_file() and not (dest / FILES[3]).is_symlink()
    assert FILES[3] in capsys.readouterr().err  # the progress bar


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("tampered", "MD5"),
        ("truncated", "not a valid gzip file"),
        ("bomb", "more than the expected"),
        ("not-gzip", "not a valid gzip file"),
        ("absent", "HTTP 404"),
    ],
)
def test_download_rejects_bad_files(tmp_path, mirror, mnist_dir, kind: str, reason: str):
    dest = _seed(tmp_path / "d", mnist_dir)
    with pytest.raises(DataError) as excinfo:
        download("mnist", dest, mirrors=[mirror + kind], progress=False)
    one_line_error(excinfo, FILES[3], reason, str(dest), "FNBACKPROP_DATA", "--data-dir")
    assert sorted(os.listdir(dest)) == sorted(FILES[:3])  # nothing left under any name


def test_download_falls_back_to_the_next_mirror(tmp_path, mirror, mnist_dir):
    dest = _seed(tmp_path / "d", mnist_dir)
    download("mnist", dest, mirrors=[mirror + "tampered", mirror + "good"], progress=False)
    assert (dest / FILES[3]).read_bytes() == (mnist_dir / FILES[3]).read_bytes()
    assert sorted(os.listdir(dest)) == sorted(FILES)


def test_download_offline(tmp_path: Path):
    dest = tmp_path / "d"
    with pytest.raises(DataError) as excinfo:
        download("mnist", dest, mirrors=[_closed_port_url(), "nonsense://x/"], progress=False)
    message = one_line_error(excinfo, FILES[0], str(dest), "FNBACKPROP_DATA", "--data-dir")
    assert "refused" in message.lower()
    assert f"{dest} does not exist (it was not created)" in message
    assert os.listdir(tmp_path) == []  # neither the folder nor a hidden one it was fetched into


def _offline(url, out, progress, timeout):
    raise data._MirrorFailed("[Errno -3] Temporary failure in name resolution")


@pytest.mark.parametrize("how", ["FNBACKPROP_DATA", "--data-dir"])
def test_a_mistyped_data_folder_is_named_and_not_created(clean_env, tmp_path, how, capsys):
    """`FNBACKPROP_DATA=…/dta/mnist fnbackprop train …` with no network: one line naming the
    folder, exit code 2, and no empty folder left to be mistaken for the data."""
    from fnbackprop import cli

    typo = tmp_path / "shared" / "dta" / "mnist"
    clean_env.setattr(data, "_fetch", _offline)
    clean_env.chdir(tmp_path)
    config = REPO / "experiments" / "configs" / "chapter1.toml"
    if how == "FNBACKPROP_DATA":
        clean_env.setenv("FNBACKPROP_DATA", str(typo))
        args = ["train", str(config), "--quiet", "--out", "run"]
    else:
        args = ["data", "download", "--data-dir", str(typo)]
    before = sorted(os.listdir(tmp_path))
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"could not download {FILES[0]} for mnist" in err
    assert f"{typo} does not exist (it was not created): check the path" in err
    assert "name resolution" in err
    assert not typo.exists() and not (tmp_path / "shared").exists()
    left = set(os.listdir(tmp_path)) - {"run"}  # the run's own folder is fnbackprop.runs' matter
    assert left == set(before)  # no hidden folder it was fetched into either


def test_a_new_folder_appears_only_with_every_file(tmp_path, mirror, monkeypatch):
    """Three files arrive, the fourth does not: the new folder is not created half full."""
    fetch = data._fetch

    def fourth_fails(url, out, progress, timeout):
        if url.endswith(FILES[3]):
            raise data._MirrorFailed("connection reset")
        fetch(url, out, progress, timeout)

    monkeypatch.setattr(data, "_fetch", fourth_fails)
    dest = tmp_path / "new" / "mnist"
    with pytest.raises(DataError) as excinfo:
        download("mnist", dest, mirrors=[mirror + "good"], progress=False)
    one_line_error(excinfo, FILES[3], "connection reset", f"{dest} does not exist")
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(data, "_fetch", fetch)
    download("mnist", dest, mirrors=[mirror + "good"], progress=False)
    assert sorted(os.listdir(dest)) == sorted(FILES)
    assert os.listdir(tmp_path) == ["new"] and os.listdir(tmp_path / "new") == ["mnist"]


def test_a_file_in_the_way_of_the_folder_is_named(tmp_path: Path):
    (tmp_path / "mnist").write_bytes(b"")
    with pytest.raises(DataError) as excinfo:
        download("mnist", tmp_path / "mnist", mirrors=[_closed_port_url()], progress=False)
    one_line_error(excinfo, f"cannot create data folder {tmp_path / 'mnist'}", "in the way")


def test_download_cannot_create_folder(tmp_path: Path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(DataError, match="cannot create data folder"):
        download("mnist", tmp_path / "file" / "sub", mirrors=[], progress=False)


def test_download_cannot_write(tmp_path: Path, monkeypatch):
    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_io.tempfile, "NamedTemporaryFile", read_only)
    with pytest.raises(DataError) as excinfo:
        download("mnist", tmp_path, mirrors=[_closed_port_url()], progress=False)
    one_line_error(excinfo, f"cannot write {tmp_path / FILES[0]}", "Permission denied")
    with pytest.raises(DataError, match="cannot write"):
        write_mnist_pkl(Splits(*[Split(np.zeros((1, 784)), np.zeros(1))] * 3), tmp_path / "m.pkl")


def test_no_unrestricted_unpickling_in_the_module():
    source = Path(data.__file__).read_text()
    assert "pickle.load(" not in source and "pickle.loads(" not in source


def test_expanded_data_adds_each_image_shifted_one_pixel_four_ways():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (3, 784)).astype(np.float32)
    labels = np.array([7, 1, 9], np.int32)
    out = data.expanded(data.Split(images, labels))
    assert out.images.shape == (15, 784) and out.images.dtype == np.float32
    np.testing.assert_array_equal(out.labels, np.repeat(labels, 5))
    grid = images.reshape(3, 28, 28)
    for i in range(3):
        copies = out.images[5 * i : 5 * i + 5].reshape(5, 28, 28)
        np.testing.assert_array_equal(copies[0], grid[i])
        up, down, left, right = copies[1:]
        np.testing.assert_array_equal(up[:-1], grid[i][1:])  # row r+1 moved to row r
        np.testing.assert_array_equal(down[1:], grid[i][:-1])
        np.testing.assert_array_equal(left[:, :-1], grid[i][:, 1:])
        np.testing.assert_array_equal(right[:, 1:], grid[i][:, :-1])
        for edge in (up[-1], down[0], left[:, -1], right[:, 0]):  # moved in black
            assert not edge.any()
    again = np.random.default_rng(0).uniform(0, 1, (3, 784)).astype(np.float32)
    np.testing.assert_array_equal(images, again)  # the input is left as it was
