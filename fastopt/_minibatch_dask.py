"""``minimize_minibatch`` on dask arrays: the data streamed block by block.

Imported only when ``data`` holds a dask collection (``import fastopt`` never imports dask).
Each dask array is rechunked to the blocks (the row chunks of the first dask array unless
``blocks=`` says otherwise; chunks across the other axes merged), and block ``k`` of every
array is computed by one ``dask.compute`` call, with whatever scheduler is active (dask's
local threaded scheduler, or a ``distributed.Client``, whose workers compute it and send it
here). NumPy arrays in the same ``data`` tuple stay in memory and are sliced per block.

Bounded memory: the blocks in the order the epoch visits them (fastopt._minibatch_blocks),
``prefetch`` of them computed ahead by one background thread while the optimizer works on the
current one, so at most ``1 + prefetch`` blocks are held at once (plus the pieces of one batch
that spans blocks, copies of at most ``batch_size`` rows).
"""

import collections
import concurrent.futures
import contextvars

import numpy as np


def is_dask_collection(obj):
    """True for a dask collection (dask.array, dataframe, ...), without importing dask."""
    return hasattr(obj, "__dask_graph__")


def check_dask_data(arrays):
    """``(arrays, n_samples, row_chunks)`` of ``data`` that holds a dask collection: dask
    arrays as they are, anything else as a NumPy array; ``row_chunks``: the first dask
    array's row chunks, the default blocks."""
    try:
        import dask.array as da
        from dask.delayed import Delayed
    except ImportError as exc:  # a dask collection without dask.array: a partial install
        raise ImportError("data holds a dask collection; minimize_minibatch needs "
                          "dask.array for it: pip install 'dask[array]'") from exc
    out, chunks = [], None
    for i, a in enumerate(arrays):
        if isinstance(a, da.Array):
            if a.ndim == 0:
                raise ValueError(f"data[{i}] must have a first axis (samples), got a scalar")
            if any(np.isnan(c) for c in a.chunks[0]):
                raise ValueError(f"data[{i}] is a dask array of unknown row chunk sizes: "
                                 f"call its compute_chunk_sizes() first")
            if any(np.isnan(c) for axis in a.chunks[1:] for c in axis):
                raise ValueError(f"data[{i}] is a dask array of unknown chunk sizes (past the "
                                 f"rows): call its compute_chunk_sizes() first")
            if chunks is None:
                chunks = tuple(int(c) for c in a.chunks[0])
        elif is_dask_collection(a):
            # (not hasattr: a Delayed answers every attribute with another Delayed)
            hint = (" (a dask.delayed array: da.from_delayed(value, shape, dtype))"
                    if isinstance(a, Delayed) else
                    " (a dask DataFrame or Series: take .to_dask_array(lengths=True))"
                    if type(a).__name__ in ("DataFrame", "Series") else "")
            raise TypeError(f"data[{i}] must be a NumPy or dask array, got "
                            f"{type(a).__module__}.{type(a).__name__}{hint}")
        else:
            a = np.asarray(a)
            if a.ndim == 0:
                raise ValueError(f"data[{i}] must have a first axis (samples), got a scalar")
        out.append(a)
    return out, int(out[0].shape[0]), chunks


class DaskBlocks:
    """The feeder of dask data (see fastopt._minibatch_blocks): ``take(k)`` returns block
    ``k`` of every array, computed ahead by a background thread when it was planned."""

    streams = True

    def __init__(self, arrays, sizes, prefetch):
        import dask
        import dask.array as da

        self._compute = dask.compute
        self.sizes = sizes
        self.offsets = np.concatenate(([0], np.cumsum(sizes))).tolist()
        # Per array: one dask.delayed per block (dask arrays), or the array itself (NumPy).
        self.sources = []
        # Per dask array: its shape past the rows, which every computed block must have.
        self.trailing = {}
        for i, a in enumerate(arrays):
            if isinstance(a, da.Array):
                self.trailing[i] = a.shape[1:]
                whole = {axis: -1 for axis in range(1, a.ndim)}
                a = a.rechunk({0: sizes, **whole})
                a = a.to_delayed().reshape(-1).tolist()
            self.sources.append(a)
        self.prefetch = prefetch
        self.pending = collections.deque()  # (k, future) being computed ahead, in order
        self.queue = collections.deque()    # blocks planned next, not yet submitted
        self.executor = None

    def _fetch(self, k):
        """Block k of every array: the dask arrays' in one dask.compute call."""
        lazy = [s[k] for s in self.sources if isinstance(s, list)]
        computed = iter(self._compute(*lazy))
        start, stop = self.offsets[k], self.offsets[k + 1]
        return [self._checked(i, k, next(computed)) if isinstance(s, list) else s[start:stop]
                for i, s in enumerate(self.sources)]

    def _checked(self, i, k, block):
        """The computed block ``k`` of ``data[i]``, aligned, after checking that it has the
        shape its dask chunks declare: dask trusts them (``from_delayed``'s ``shape``,
        ``map_blocks``' ``chunks``), and a block of another size would be cut by the declared
        one, dropping rows or running short batches."""
        block = _aligned(block)
        expected = (self.sizes[k], *self.trailing[i])
        if block.shape != expected:
            raise ValueError(f"data[{i}]'s block {k} was computed with shape {block.shape}, "
                             f"but its dask chunks declare {expected}: the dask array's "
                             f"chunks are wrong (a from_delayed shape or map_blocks chunks?)")
        return block

    def plan(self, visits):
        visits = list(visits)
        keep = 0
        while keep < min(len(self.pending), len(visits)) and \
                self.pending[keep][0] == visits[keep]:
            keep += 1
        self._drop(keep)
        self.queue = collections.deque(visits[keep:])
        self._top_up()

    def expect(self, visits):
        self.queue.extend(visits)
        self._top_up()

    def take(self, k):
        if self.pending and self.pending[0][0] == k:
            block = self.pending.popleft()[1].result()
        else:  # not the block planned next (or no prefetching): fetch it now, plan anew
            self._drop(0)
            self.queue.clear()
            block = self._fetch(k)
        self._top_up()
        return block

    def _top_up(self):
        while len(self.pending) < self.prefetch and self.queue:
            if self.executor is None:
                self.executor = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix="fastopt-prefetch")
            k = self.queue.popleft()
            # In the caller's context: a Client made current by ``client.as_current()`` (or
            # anything else dask keeps in a contextvar) is then the one the block uses.
            context = contextvars.copy_context()
            self.pending.append((k, self.executor.submit(context.run, self._fetch, k)))

    def _drop(self, keep):
        """Forget the blocks fetched ahead beyond the first ``keep``."""
        while len(self.pending) > keep:
            self.pending.pop()[1].cancel()

    def close(self):
        """Cancel what was fetched ahead; wait for a block being computed (no thread or
        dask computation outlives the run)."""
        self._drop(0)
        self.queue.clear()
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None


def _aligned(block):
    """The computed block as an ndarray whose items are aligned. A block that a distributed
    worker sent may lie at any byte offset of the message; NumPy does not hand unaligned
    data to BLAS but computes ``X @ w`` with its own loop, whose rounding differs, so such a
    block is copied (the in-memory run's arrays are aligned)."""
    block = np.asarray(block)
    return block if block.flags.aligned else block.copy()
