"""IDX files (LeCun's format for MNIST and its descendants), gzip-compressed or raw.

The reader trusts nothing: a short, corrupt or mislabelled file raises a `DataError` whose message names
the file and the problem in one line, rather than returning a silently wrong array.
"""

from __future__ import annotations

import gzip
import zlib
from math import prod
from pathlib import Path

import numpy as np

from edge_emnist.errors import DataError

# IDX type codes (third magic byte) -> big-endian numpy dtype
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype: code for code, dtype in IDX_DTYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The file's (decompressed) bytes; gzip is detected by content, not by the file name."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            is_gzip = raw.read(2) == GZIP_MAGIC
        opener = gzip.open if is_gzip else open
        with opener(path, "rb") as f:
            return f.read() if limit is None else f.read(limit)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def parse_header(data: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, header length) from an IDX header, checking the magic number."""
    if len(data) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (magic {data[:4].hex()}, expected 0000xxxx)")
    if data[2] not in IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX type code 0x{data[2]:02x}")
    rank = data[3]
    header_len = 4 + 4 * rank
    if len(data) < header_len:
        raise DataError(f"{path}: header declares rank {rank} but the file ends inside the header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    return IDX_DTYPES[data[2]], shape, header_len


def read_idx_shape(path: Path) -> tuple[int, ...]:
    """Only the declared shape: cheap, for listings (reads the header, not the data)."""
    head = read_bytes(path, limit=4 + 4 * 255)
    return parse_header(head, Path(path))[1]


def read_idx(path: Path, *, rank: int | None = None, dtype: np.dtype | type | None = None,
             shape_limit: tuple[int | None, ...] | None = None) -> np.ndarray:
    """Read a whole IDX file, checking magic, dtype, rank and declared against actual byte size.

    The header says how many bytes follow, so no more than that (plus one, to notice trailing bytes) is ever
    inflated: a small gzip that would expand to gigabytes is refused after its header, not after filling memory.
    `shape_limit` bounds each dimension (None: any), checked on the header before any data is read.
    """
    path = Path(path)
    head = read_bytes(path, limit=4 + 4 * 255)
    file_dtype, shape, header_len = parse_header(head, path)
    if shape_limit is not None and len(shape) == len(shape_limit) and any(
            limit is not None and size > limit for size, limit in zip(shape, shape_limit, strict=True)):
        raise DataError(f"{path}: header declares shape {shape}, more than this dataset can hold "
                        f"({' x '.join('any' if n is None else f'{n:,}' for n in shape_limit)}); refused unread")
    expected = prod(shape) * file_dtype.itemsize
    data = read_bytes(path, limit=header_len + expected + 1)
    if rank is not None and len(shape) != rank:
        raise DataError(f"{path}: rank {len(shape)} (shape {shape}), expected rank {rank}")
    if dtype is not None and file_dtype != np.dtype(dtype):
        raise DataError(f"{path}: element type {file_dtype}, expected {np.dtype(dtype)}")
    actual = len(data) - header_len
    if actual != expected:
        raise DataError(
            f"{path}: header declares shape {shape} ({expected:,} bytes of data) but the file holds "
            + (f"{actual:,} bytes (truncated)" if actual < expected else "more (trailing bytes)")
        )
    array = np.frombuffer(data, dtype=file_dtype, offset=header_len).reshape(shape)
    return array.astype(file_dtype.newbyteorder("="), copy=False)


def write_idx(path: Path, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write an IDX file (gzip when the name ends in .gz). Used by tests and derived datasets."""
    path = Path(path)
    array = np.asarray(array)
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    code = _CODES.get(np.dtype(big_endian))
    if code is None:
        raise DataError(f"{path}: numpy dtype {array.dtype} has no IDX type code")
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=big_endian).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:  # no name and no time in the gzip header: the same array always gives the same bytes
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
