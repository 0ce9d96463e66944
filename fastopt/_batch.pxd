# What fastopt/_batch.pyx shares with the other batch loops (fastopt/_lbfgs_batch.pyx): the
# chunks of a batch with a C objective, spread over a team of threads, in time slices between
# which the calling thread runs Python's signal handlers (Ctrl-C) and a display.

from fastopt._fpenv cimport fastopt_fpcr

# solve(job, c, due): work on chunk c until it is done or time ``due`` (HUGE_VAL: until done)
# has come, keeping where it stopped; is_open(job, c): whether chunk c has work left.
ctypedef void (*chunk_solver)(void* job, Py_ssize_t c, double due) noexcept nogil
ctypedef bint (*chunk_open)(void* job, Py_ssize_t c) noexcept nogil


cdef class ChunkDisplay:
    # run_chunks' display between two slices, with the GIL: the open chunks (all of them
    # while a team runs), a subclass's override.
    cdef int show(self, const Py_ssize_t* open_chunks, Py_ssize_t n_open) except -1


cdef int run_chunks(chunk_solver solve, chunk_open is_open, void* job, Py_ssize_t n_chunks,
                    int n_threads, bint interruptible, ChunkDisplay shown,
                    fastopt_fpcr caller_bits) except -1
