"""A streaming bigWig writer for binned tracks: numpy and ISA-L's zlib, memory bounded by one chunk.

Why not pyBigWig (libBigWig), which reads them: it builds the zoom levels when
the file is closed by decompressing every block again and walking every entry
once per level, and keeps every zoom record in memory until then (~330 MB a
track for hg38 at 25 bp). Writing one 249 Mb chromosome took it 6.6-8.5 s; here the
blocks are compressed as they come and the zoom records are summed with numpy
on the way (benchmarks/bench_bigwig_writer.py has the table). pybigtools writes
only from Python tuples, one per record.

The file follows the bigWig format (Kent et al. 2010, version 4) as libBigWig
writes it: header, zoom headers, total summary, chromosome B+ tree, data blocks
(fixed-step sections of at most ``ITEMS_PER_BLOCK`` bins, zlib-compressed by isal),
their R-tree index, then each zoom level's records and index. Zoom records are
aligned to their reduction (records at ``k * reduction``), as readers allow;
they are spilled to anonymous temporary files beside the output until the main
data is complete, so memory does not grow with the genome (but for the block
index: 40 bytes per 1,024 bins, ~5 MB for hg38). Readers tested:
pyBigWig and pybigtools (tests/test_bigwig_writer.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
from isal import isal_zlib

from atacdenoise.io.atomic import atomic_path

BIGWIG_MAGIC, CHROM_TREE_MAGIC, INDEX_MAGIC = 0x888FFC26, 0x78CA8C91, 0x2468ACE0
ITEMS_PER_BLOCK = 1024  # bins per data block, as UCSC's bedGraphToBigWig: ~4 kB that a browser reads for a view
ZOOM_RECORDS_PER_BLOCK = 512
INDEX_BLOCK_SIZE = 256  # children per R-tree node
UNCOMPRESSED_BUFFER = 32768  # the largest uncompressed block (readers allocate this much to inflate one)
MAX_ZOOM_LEVELS = 10
FIRST_ZOOM_SHIFT, ZOOM_STEP_SHIFT = 4, 2  # zoom records of 16 bins, then each level 4x the one below
ADD_BINS = 1 << 19  # bins summed at a time: ~6 float64/int64 temporaries of 4 MB each
# zlib streams made by ISA-L (isal): level 1 compresses a 249 Mb chromosome's denoised track 4x faster than zlib's
# level 1, 6 % larger (benchmarks/RESULTS.md); both let the GIL go, so compression overlaps the model.
COMPRESSION_LEVEL = 1

HEADER_SIZE, ZOOM_HEADER_SIZE, SUMMARY_SIZE = 64, 24, 40
ZOOM_RECORD = np.dtype([("chrom", "<u4"), ("start", "<u4"), ("end", "<u4"), ("count", "<u4"),
                        ("min", "<f4"), ("max", "<f4"), ("sum", "<f4"), ("sumsq", "<f4")])
INDEX_ENTRY = np.dtype([("chrom0", "<u4"), ("start", "<u4"), ("chrom1", "<u4"), ("end", "<u4"),
                        ("offset", "<u8"), ("size", "<u8")])


class BigWigWriter:
    """Write a binned track chunk by chunk, atomically (memory bounded by the chunk, not the chromosome).

    ``add(chrom, first_bin, values)`` appends consecutive bins; chromosomes come
    in ``chrom_sizes`` order and bins in increasing order (gaps read as 0). Each
    stretch of non-zero bins is written as fixed-step sections (``span = step =
    bin_size``); zero bins are omitted (readers treat missing as 0) and a
    chromosome's last, partial bin is one interval clipped to its end. NaN is
    written as 0. The zoom levels start at 16 bins (400 bp at 25 bp) and grow 4x, up to
    10 levels and no further than the longest chromosome; a level with as many
    records as the one below it, and those after it, are left out.
    """

    def __init__(self, path: str | os.PathLike, chrom_sizes: dict[str, int], bin_size: int):
        self.path, self.chrom_sizes, self.bin_size = path, dict(chrom_sizes), int(bin_size)
        self._ids = {chrom: i for i, chrom in enumerate(self.chrom_sizes)}
        self._chrom, self._next_bin = None, 0
        longest = max(self.chrom_sizes.values(), default=0)
        reductions = [self.bin_size << (FIRST_ZOOM_SHIFT + ZOOM_STEP_SHIFT * i) for i in range(MAX_ZOOM_LEVELS)]
        self._zooms = [_ZoomLevel(r) for r in reductions if r <= max(longest, reductions[0])]
        self._summary = _Summary()

    def __enter__(self) -> "BigWigWriter":
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._file = open(tmp, "wb", buffering=1 << 20)
            for zoom in self._zooms:
                zoom.open(Path(tmp).parent)
            self._file.write(bytes(HEADER_SIZE + ZOOM_HEADER_SIZE * len(self._zooms) + SUMMARY_SIZE))
            self._chrom_tree_offset = self._file.tell()
            self._file.write(_chrom_tree(self.chrom_sizes, self._chrom_tree_offset))
            self._data_offset = self._file.tell()
            self._file.write(bytes(8))  # the number of blocks, known at the end
            self._offset = self._file.tell()  # kept here as blocks are written (tell() costs a flush check)
            self._index: list[np.ndarray] = []
        except BaseException as err:
            self._abandon(err)
            raise
        return self

    def __exit__(self, *exc) -> bool | None:
        try:
            if exc[0] is None:
                self._finish()
            self._file.close()
        except BaseException as err:  # a failed close leaves no file either
            self._abandon(err)
            raise
        finally:
            for zoom in self._zooms:
                zoom.close()
        return self._atomic.__exit__(*exc)

    def _abandon(self, err: BaseException) -> None:
        """Close everything without raising (closing flushes, which fails again on a full disk), then let the
        atomic path remove the temporary and name the output in the error."""
        with contextlib.suppress(OSError):
            if getattr(self, "_file", None) is not None:
                self._file.close()
        for zoom in self._zooms:
            zoom.close()
        self._atomic.__exit__(type(err), err, err.__traceback__)

    def add(self, chrom: str, first_bin: int, values: np.ndarray) -> None:
        if len(values) > ADD_BINS:  # a whole chromosome at once (bin does that): its temporaries in slices
            for lo in range(0, len(values), ADD_BINS):
                self.add(chrom, first_bin + lo, values[lo:lo + ADD_BINS])
            return
        if chrom != self._chrom:
            if self._ids.get(chrom, -1) <= self._ids.get(self._chrom, -1):  # the index needs the header order
                raise ValueError(f"write_bigwig: {chrom} is not in chrom_sizes or comes out of order")
            self._end_chromosome()
            self._chrom, self._next_bin = chrom, 0
        length, size = self.chrom_sizes[chrom], self.bin_size
        n_bins = -(-length // size)
        values = np.nan_to_num(np.asarray(values, np.float32), nan=0.0)
        if first_bin < self._next_bin or first_bin + len(values) > n_bins:
            raise ValueError(f"write_bigwig: bins {first_bin}-{first_bin + len(values)} of {chrom} overlap "
                             f"written ones or pass its {n_bins} bins")
        self._next_bin = first_bin + len(values)
        stored = np.flatnonzero(values)
        if stored.size == 0:
            return
        chrom_id = self._ids[chrom]
        self._write_sections(chrom_id, first_bin, values, length, n_bins)
        kept = values[stored].astype(np.float64)
        bases = np.full(len(stored), float(size))
        if first_bin + stored[-1] == n_bins - 1:  # a partial last bin covers fewer bases
            bases[-1] = length - (n_bins - 1) * size
        levels = _zoom_sums(first_bin + stored, kept, bases, size, self._zooms)
        self._summary.add(*levels[0][1])
        for zoom, (keys, stats) in zip(self._zooms, levels):
            zoom.add(chrom_id, length, keys, stats)

    def _write_sections(self, chrom_id: int, first_bin: int, values: np.ndarray, length: int, n_bins: int) -> None:
        size = self.bin_size
        partial = length % size and first_bin + len(values) == n_bins
        full = values[:-1] if partial else values
        edges = np.diff(np.concatenate([[0], (full != 0).view(np.int8), [0]]))
        entries = []
        for lo, hi in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            for block_lo in range(lo, hi, ITEMS_PER_BLOCK):
                block = full[block_lo:min(block_lo + ITEMS_PER_BLOCK, hi)]
                start = (first_bin + block_lo) * size
                end = start + len(block) * size
                header = struct.pack("<IIIIIBBH", chrom_id, start, end, size, size, 3, 0, len(block))
                entries.append(self._write_block(chrom_id, start, end, header + block.tobytes()))
        if partial and values[-1] != 0:  # one bedGraph item clipped to the chromosome end
            start = (first_bin + len(values) - 1) * size
            header = struct.pack("<IIIIIBBH", chrom_id, start, length, 0, 0, 1, 0, 1)
            entries.append(self._write_block(chrom_id, start, length,
                                             header + struct.pack("<IIf", start, length, values[-1])))
        self._index.append(np.array(entries, INDEX_ENTRY))

    def _write_block(self, chrom_id: int, start: int, end: int, raw: bytes) -> tuple:
        offset = self._offset
        packed = isal_zlib.compress(raw, COMPRESSION_LEVEL)
        self._file.write(packed)
        self._offset += len(packed)
        return chrom_id, start, chrom_id, end, offset, len(packed)

    def _end_chromosome(self) -> None:
        for zoom in self._zooms:
            zoom.flush_pending()

    def _finish(self) -> None:
        self._end_chromosome()
        index = np.concatenate(self._index) if self._index else np.zeros(0, INDEX_ENTRY)
        f = self._file
        index_offset = f.tell()
        _write_index(f, index, ITEMS_PER_BLOCK)
        zoom_headers = [zoom.append_to(f) for zoom in _distinct_levels(self._zooms)] if index.size else []
        f.write(struct.pack("<I", BIGWIG_MAGIC))
        f.seek(0)
        f.write(struct.pack("<IHHQQQHHQQIQ", BIGWIG_MAGIC, 4, len(zoom_headers), self._chrom_tree_offset,
                            self._data_offset, index_offset, 0, 0, 0,
                            HEADER_SIZE + ZOOM_HEADER_SIZE * len(self._zooms), UNCOMPRESSED_BUFFER, 0))
        for header in zoom_headers:
            f.write(struct.pack("<IIQQ", *header))
        f.seek(HEADER_SIZE + ZOOM_HEADER_SIZE * len(self._zooms))
        f.write(self._summary.pack())
        f.seek(self._data_offset)
        f.write(struct.pack("<Q", len(index)))


def _zoom_sums(bins: np.ndarray, values: np.ndarray, bases: np.ndarray, bin_size: int, zooms: list) -> list:
    """Per zoom level, ``(keys, stats)``: the records that these non-zero bins touch (``keys``, the record's
    number along the chromosome) and their partial sums (bases, min, max, sum, sum of squares); each level
    from the one below it, so only the first one costs a pass over the bins."""
    # Records hold 16 bins, then 4 records of the level below: shifts, far cheaper than int64 division.
    keys = bins >> FIRST_ZOOM_SHIFT
    sums = values * bases
    stats = (bases, values, values, sums, sums * values)
    out = []
    for level in range(len(zooms)):
        if level:
            keys = keys >> ZOOM_STEP_SHIFT
        firsts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        keys = keys[firsts]
        stats = (np.add.reduceat(stats[0], firsts), np.minimum.reduceat(stats[1], firsts),
                 np.maximum.reduceat(stats[2], firsts), np.add.reduceat(stats[3], firsts),
                 np.add.reduceat(stats[4], firsts))
        out.append((keys, stats))
    return out


class _ZoomLevel:
    """One zoom level's records, compressed into blocks in a temporary file until the data is complete.

    The record a chunk ends in may go on in the next chunk: it is held back (``pending``) and merged.
    """

    def __init__(self, reduction: int):
        self.reduction = reduction
        self.n_records = 0
        self._pending: tuple | None = None  # (chrom id, chrom length, key, bases, min, max, sum, sumsq)
        self._records: list[np.ndarray] = []
        self._n_buffered = 0
        self._index: list[tuple] = []
        self._file, self._size = None, 0

    def open(self, folder: Path) -> None:
        self._file = tempfile.TemporaryFile(dir=folder, prefix=".zoom.")

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):  # an unnamed temporary: nothing to keep, nothing left behind
                self._file.close()

    def add(self, chrom_id: int, length: int, keys: np.ndarray, stats: tuple) -> None:
        bases, lows, highs, sums, squares = (np.array(s) for s in stats)  # copies: the first record may change
        p = self._pending
        if p is not None and p[0] == chrom_id and p[2] == keys[0]:
            bases[0] += p[3]
            lows[0], highs[0] = min(lows[0], p[4]), max(highs[0], p[5])
            sums[0] += p[6]
            squares[0] += p[7]
        elif p is not None:
            self._emit(*(np.array([x]) for x in p))
        self._pending = (chrom_id, length, keys[-1], bases[-1], lows[-1], highs[-1], sums[-1], squares[-1])
        if len(keys) > 1:
            self._emit(chrom_id, length, keys[:-1], bases[:-1], lows[:-1], highs[:-1], sums[:-1], squares[:-1])

    def flush_pending(self) -> None:
        if self._pending is not None:
            self._emit(*(np.array([x]) for x in self._pending))
            self._pending = None

    def _emit(self, chrom_id, length, keys, bases, lows, highs, sums, squares) -> None:
        records = np.empty(len(keys), ZOOM_RECORD)
        records["chrom"] = chrom_id
        records["start"] = keys * self.reduction
        records["end"] = np.minimum((keys + 1) * self.reduction, length)
        records["count"], records["min"], records["max"] = bases, lows, highs
        records["sum"], records["sumsq"] = sums, squares
        self._records.append(records)
        self._n_buffered += len(records)
        self.n_records += len(records)
        if self._n_buffered >= ZOOM_RECORDS_PER_BLOCK:
            self._write_blocks(final=False)

    def _write_blocks(self, final: bool) -> None:
        records = np.concatenate(self._records) if self._records else np.zeros(0, ZOOM_RECORD)
        n_full = len(records) // ZOOM_RECORDS_PER_BLOCK * ZOOM_RECORDS_PER_BLOCK
        cut = len(records) if final else n_full
        chroms, starts, ends = records["chrom"].tolist(), records["start"].tolist(), records["end"].tolist()
        for lo in range(0, cut, ZOOM_RECORDS_PER_BLOCK):
            hi = min(lo + ZOOM_RECORDS_PER_BLOCK, cut)
            packed = isal_zlib.compress(records[lo:hi].tobytes(), COMPRESSION_LEVEL)
            self._file.write(packed)
            self._index.append((chroms[lo], starts[lo], chroms[hi - 1], ends[hi - 1], self._size, len(packed)))
            self._size += len(packed)
        self._records = [records[cut:]]
        self._n_buffered = len(records) - cut

    def append_to(self, f) -> tuple:
        """Write this level's block count, blocks and index at ``f``'s position; its zoom header's fields."""
        self._write_blocks(final=True)
        data_offset = f.tell()
        f.write(struct.pack("<I", len(self._index)))
        self._file.seek(0)
        shutil.copyfileobj(self._file, f, 1 << 20)
        index = np.array(self._index, INDEX_ENTRY)
        index["offset"] += data_offset + 4
        index_offset = f.tell()
        _write_index(f, index, ZOOM_RECORDS_PER_BLOCK)
        return self.reduction, 0, data_offset, index_offset


def _distinct_levels(zooms: list) -> list:
    """The levels up to the first that has as many records as the one below (no coarser view; libBigWig's rule)."""
    kept = []
    for zoom in zooms:
        if kept and zoom.n_records == kept[-1].n_records:
            break
        kept.append(zoom)
    return kept


class _Summary:
    """The whole file's bases covered, min, max, sum and sum of squares (the header's total summary)."""

    def __init__(self):
        self.bases, self.low, self.high, self.sum, self.squares = 0, np.inf, -np.inf, 0.0, 0.0

    def add(self, bases, lows, highs, sums, squares) -> None:
        """One chunk's first-level zoom sums (bases, min, max, sum, sum of squares per record)."""
        self.bases += int(bases.sum())
        self.low, self.high = min(self.low, float(lows.min())), max(self.high, float(highs.max()))
        self.sum += float(sums.sum())
        self.squares += float(squares.sum())

    def pack(self) -> bytes:
        low, high = (self.low, self.high) if self.bases else (0.0, 0.0)
        return struct.pack("<Qdddd", self.bases, low, high, self.sum, self.squares)


def _chrom_tree(chrom_sizes: dict[str, int], start: int) -> bytes:
    """The chromosome B+ tree written at file offset ``start``: keys sorted (readers may search them), ids in
    header order; one leaf level under at most one root, as libBigWig writes it."""
    names = sorted(chrom_sizes, key=lambda name: name.encode())
    ids = {chrom: i for i, chrom in enumerate(chrom_sizes)}
    key_size = max((len(name.encode()) for name in names), default=1)
    per_block = max(1, min(len(names), 0x7FFF))
    leaves = [names[i:i + per_block] for i in range(0, len(names), per_block)] or [[]]
    out = [struct.pack("<IIIIQQ", CHROM_TREE_MAGIC, per_block, key_size, 8, len(names), 0)]
    item = struct.Struct(f"<{key_size}sII")
    if len(leaves) > 1:
        node_size = 4 + per_block * (key_size + 8)  # root and leaves alike, padded to per_block items
        first_leaf = start + 32 + node_size
        out.append(struct.pack("<BBH", 0, 0, len(leaves)))
        out += [struct.pack(f"<{key_size}sQ", leaf[0].encode(), first_leaf + i * node_size)
                for i, leaf in enumerate(leaves)]
        out.append(bytes((per_block - len(leaves)) * (key_size + 8)))
    for leaf in leaves:
        out.append(struct.pack("<BBH", 1, 0, len(leaf)))
        out += [item.pack(name.encode(), ids[name], chrom_sizes[name]) for name in leaf]
        out.append(bytes((per_block - len(leaf)) * (key_size + 8)))
    return b"".join(out)


def _write_index(f, entries: np.ndarray, items_per_slot: int) -> None:
    """The R-tree over ``entries`` (blocks in file order), at ``f``'s position: root first, leaves last."""
    start = f.tell()
    levels = [entries]  # levels[0]: the leaves' items; each level above: one item per node below
    while len(levels[-1]) > INDEX_BLOCK_SIZE:
        below = levels[-1]
        firsts = np.arange(0, len(below), INDEX_BLOCK_SIZE)
        lasts = np.minimum(firsts + INDEX_BLOCK_SIZE, len(below)) - 1
        above = np.zeros(len(firsts), INDEX_ENTRY)
        for field in ("chrom0", "start"):
            above[field] = below[field][firsts]
        for field in ("chrom1", "end"):
            above[field] = below[field][lasts]
        levels.append(above)
    # Each level's node sizes (a leaf item is 32 bytes, an item pointing to a node 24; an empty track has one
    # empty leaf), then where each level starts: the root right after the header, the leaves last.
    node_sizes = [4 + (32 if i == 0 else 24) * np.diff(np.r_[np.arange(0, max(len(items), 1), INDEX_BLOCK_SIZE),
                                                              len(items)])
                  for i, items in enumerate(levels)]
    level_offsets = {}
    offset = start + 48
    for i in reversed(range(len(levels))):
        level_offsets[i] = offset
        offset += int(node_sizes[i].sum())
    first, last = (0, 0), (0, 0)  # an empty track: an empty root leaf, which readers handle
    if len(entries):
        first, last = (entries[0]["chrom0"], entries[0]["start"]), (entries[-1]["chrom1"], entries[-1]["end"])
    f.write(struct.pack("<IIQIIIIQII", INDEX_MAGIC, INDEX_BLOCK_SIZE, len(entries), *first, *last, start,
                        items_per_slot, 0))
    for i in reversed(range(len(levels))):
        items = levels[i]
        if i:  # child pointers: the offsets of the nodes one level down
            items["offset"] = level_offsets[i - 1] + np.r_[0, np.cumsum(node_sizes[i - 1])[:-1]]
        for lo in range(0, max(len(items), 1), INDEX_BLOCK_SIZE):
            node = items[lo:lo + INDEX_BLOCK_SIZE]
            f.write(struct.pack("<BBH", 1 if i == 0 else 0, 0, len(node)))
            f.write(node.tobytes() if i == 0 else _pointer_items(node))


def _pointer_items(node: np.ndarray) -> bytes:
    pointers = np.empty(len(node), [("chrom0", "<u4"), ("start", "<u4"), ("chrom1", "<u4"), ("end", "<u4"),
                                    ("offset", "<u8")])
    for field in pointers.dtype.names:
        pointers[field] = node[field]
    return pointers.tobytes()
