# The flush-to-zero mode (src_c/fastopt_fpenv.h): what the loops and the step cimport.
#
# The calling thread: ``env = fastopt_flush_begin(on)`` ... ``fastopt_fpenv_restore(env)`` in
# a try/finally. Each parallel region: ``bits = fastopt_flush_bits()`` before it, and in
# every iteration ``env = fastopt_follow_begin(bits)`` ... ``fastopt_fpenv_restore(env)``.
cdef extern from "fastopt_fpenv.h" nogil:
    ctypedef unsigned long long fastopt_fpcr
    ctypedef struct fastopt_fpenv:
        fastopt_fpcr saved
        int changed
    int fastopt_flush_supported()
    fastopt_fpcr fastopt_flush_bits()
    fastopt_fpenv fastopt_flush_begin(int on)
    fastopt_fpenv fastopt_follow_begin(fastopt_fpcr bits)
    void fastopt_fpenv_restore(fastopt_fpenv env)

# Whether the calling thread is inside ``with fastopt.flush_subnormals():`` (its counter is
# a C thread-local of fastopt/_fpenv.pyx, read here through a function pointer).
cdef bint flush_context() noexcept nogil
