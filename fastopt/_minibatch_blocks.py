"""The order in which ``minimize_minibatch`` visits the samples: the block rule.

The rows of the data are cut into consecutive **blocks** of sizes ``c_0, ..., c_{B-1}``: one
block by default for NumPy data, the row chunks for dask data, or what ``blocks=`` says. An
epoch with ``shuffle=True`` draws from the run's Generator ``rng``, in this order:

1. the block order, ``rng.permutation(B)`` (nothing is drawn when ``B == 1``);
2. each block's row order, ``rng.permutation(c_k)``, when the epoch reaches the block (the
   first block's at the start of the epoch, right after the block order).

The epoch's order of the samples is these row orders, block after block; the batches are its
consecutive runs of ``batch_size`` samples, so a batch may span blocks and the last one of an
epoch is smaller. ``shuffle=False`` is the natural order (no draws, and then the blocks do not
matter). The ``gtol`` pass goes through the samples in the natural order too.

With one block an epoch is exactly one ``rng.permutation(n_samples)``, the order of the
releases before blocks existed, so their seeds give the same results. The rule depends on the
block sizes only, never on where the blocks come from: the same code cuts the batches out of
in-memory blocks (``MemoryBlocks``) and of blocks streamed from dask
(``fastopt._minibatch_dask.DaskBlocks``), so both give the same batches, bit for bit.

A *feeder* hands out the blocks: ``take(k)`` returns block ``k`` of every data array (a list);
``plan(visits)`` says which blocks come next (a feeder that prefetches fetches them ahead; the
plan is only a hint, ``take`` gives whatever block it is asked for); ``expect(visits)`` adds
to the plan; ``streams`` is True when the blocks are fetched (then the rows of a block that
a batch spanning blocks keeps are copies, so that no finished block stays referenced and the
feeder's bound on the blocks held is real).
"""

import copy
import numbers
import operator
from collections.abc import Sequence

import numpy as np

from fastopt._validation import check_int


def block_sizes(blocks, n_samples, default):
    """The block sizes (a tuple of ints) that ``blocks`` asks for: None -> ``default``; an
    int ``b`` >= 1 -> blocks of ``b`` rows, the last one smaller (as dask's ``chunks=b``); a
    sequence of ints >= 0 summing to ``n_samples`` (e.g. a dask array's ``.chunks[0]``)."""
    if blocks is None:
        return tuple(default)
    if isinstance(blocks, np.ndarray) and blocks.ndim == 0:
        blocks = blocks[()]  # (a 0-d array is its scalar: an int, or refused below)
    if isinstance(blocks, (numbers.Integral, np.integer)) and not isinstance(blocks, bool):
        size = check_int("blocks", blocks, low=1, what="block size")
        full, rest = divmod(n_samples, size)
        return (size,) * full + ((rest,) if rest else ())
    # Sizes in a defined order only: a set (or a dict's keys) would give hash order.
    ordered = isinstance(blocks, Sequence) and not isinstance(blocks, (str, bytes, bytearray))
    if not (ordered or isinstance(blocks, np.ndarray) and blocks.ndim == 1):
        raise TypeError(f"blocks must be None, an int (rows per block) or a sequence of "
                        f"block sizes (list, tuple, 1-D array), got {type(blocks).__name__}")
    sizes = []
    for i, size in enumerate(blocks):
        if isinstance(size, bool) or not isinstance(size, (numbers.Integral, np.integer)):
            raise TypeError(f"blocks must hold ints (block sizes), got blocks[{i}] = {size!r}")
        if size < 0:
            raise ValueError(f"blocks must hold sizes >= 0, got blocks[{i}] = {size}")
        sizes.append(operator.index(size))
    if not sizes or sum(sizes) != n_samples:
        raise ValueError(f"blocks must be sizes that sum to the number of samples "
                         f"({n_samples}), got {len(sizes)} blocks summing to {sum(sizes)}")
    return tuple(sizes)


class MemoryBlocks:
    """The feeder of in-memory data: block ``k`` is a view of each array's rows."""

    streams = False

    def __init__(self, arrays, sizes):
        self.arrays = arrays
        self.offsets = np.concatenate(([0], np.cumsum(sizes))).tolist()

    def take(self, k):
        start, stop = self.offsets[k], self.offsets[k + 1]
        return [a[start:stop] for a in self.arrays]

    def plan(self, visits):
        pass

    def expect(self, visits):
        pass

    def close(self):
        pass


class BlockOrder:
    """The block rule over one data set: the batches of each epoch and of the gtol pass."""

    def __init__(self, feeder, sizes, batch_size, shuffle, rng):
        self.feeder, self.sizes, self.batch_size = feeder, sizes, batch_size
        self.shuffle, self.rng = shuffle, rng

    def natural(self):
        return list(range(len(self.sizes)))

    def epoch(self, then_full_pass, more_epochs):
        """The batches of one epoch (an iterator); the block order and the first block's
        row order are drawn now. ``then_full_pass``: the gtol pass follows (a hint for the
        feeder); ``more_epochs``: another epoch may follow (the feeder fetches its first
        block ahead, once this epoch's draws are done)."""
        if not self.shuffle:
            visits, first_rows = self.natural(), None
        else:
            visits = self.rng.permutation(len(self.sizes)).tolist() if len(self.sizes) > 1 \
                else [0]
            first_rows = self.rng.permutation(self.sizes[visits[0]])
        self.feeder.plan(visits + (self.natural() if then_full_pass else []))
        on_last = self._next_epoch if more_epochs and self.feeder.streams else None
        return self._batches(visits, first_rows, on_last)

    def full_pass(self):
        """The batches of the gtol pass: every sample once, in the natural order."""
        return self._batches(self.natural(), None, None)

    def _next_epoch(self):
        # Called once the epoch's last row order is drawn: the next draw from rng is the next
        # epoch's block order, which a copy of rng tells now without moving rng itself (if
        # something else draws from a Generator the caller passed, the feeder just fetches
        # the block it is then asked for).
        if not self.shuffle or len(self.sizes) == 1:
            self.feeder.expect(self.natural()[:1])
        else:
            self.feeder.expect(copy.deepcopy(self.rng).permutation(len(self.sizes))[:1].tolist())

    def _batches(self, visits, first_rows, on_last):
        """Yield the batches (lists of arrays, one per data array) of a pass over the blocks
        ``visits``; with a Generator's row orders unless ``first_rows`` is None."""
        feeder, sizes, batch_size = self.feeder, self.sizes, self.batch_size
        copy_views = feeder.streams  # pieces of a streamed block kept past it are copies
        parts, need = [], batch_size  # a batch that spans blocks: its pieces, rows it lacks
        block = None
        for j, k in enumerate(visits):
            rows_k = None if first_rows is None else \
                first_rows if j == 0 else self.rng.permutation(sizes[k])
            if on_last is not None and j == len(visits) - 1:
                on_last()
            block = None  # the previous block is not held while the next one is fetched
            block = feeder.take(k)
            size, pos = sizes[k], 0
            if parts:  # the batch that began in an earlier block
                pos = min(need, size)
                need -= pos
                parts.append(_rows(block, rows_k, 0, pos, copy_views and need))
                if need:
                    continue
                yield _joined(parts)
                parts, need = [], batch_size
            end = pos + (size - pos) // batch_size * batch_size
            for start in range(pos, end, batch_size):
                rows = slice(start, start + batch_size) if rows_k is None else \
                    rows_k[start:start + batch_size]
                yield [a[rows] for a in block]
            if end < size:
                parts.append(_rows(block, rows_k, end, size, copy_views))
                need = batch_size - (size - end)
        block = None
        if parts:
            yield _joined(parts)


def _joined(parts):
    """The batch made of ``parts`` (each a list of arrays, one per data array). One part is
    returned as it is: the epoch's last batch in one block is then the view (or fancy-indexed
    copy) of the releases before blocks, with the data's memory layout, which decides how
    ``X @ w`` rounds (a strided view does not go through BLAS, a concatenated copy does)."""
    if len(parts) == 1:
        return parts[0]
    return [np.concatenate(pieces) for pieces in zip(*parts)]


def _rows(block, rows_k, start, stop, copy):
    """Rows ``start:stop`` (of the block's row order ``rows_k``, or natural) of every array of
    ``block``; a view is copied when ``copy`` (fancy indexing already copies)."""
    if rows_k is not None:
        return [a[rows_k[start:stop]] for a in block]
    return [a[start:stop].copy() if copy else a[start:stop] for a in block]
