from fastopt._kernels cimport UpdateRule


cdef class Rule:
    # The kernel kind and scalars of one optimizer; the minimize loop reads ``rule`` directly.
    cdef UpdateRule rule
    cdef bint busy  # inside apply(), possibly with the GIL released
