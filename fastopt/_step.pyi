# Typing stub for fastopt._step (C types in trailing comments).
from typing import Any, Sequence

import numpy as np

MAX_STEP: int

class OptimizerCore:
    DELETE: object
    _rule: Rule
    _layout: Layout
    _spans: np.ndarray | None
    _slots: list[tuple[np.ndarray | None, ...]] | None
    _scalar_slots: list[tuple[np.ndarray, ...]] | None  # 0-d float64 running scalars
    _step: int  # Py_ssize_t
    _n_threads: int  # int
    _group_rules: list[Rule] | None  # several parameter groups: one Rule each
    _group_ends: tuple[int, ...] | None  # Py_ssize_t: each group's end in the parameters
    _group_starts: tuple[int, ...] | None  # Py_ssize_t: the step count when each was added
    def __setattr__(self, name: str, value: Any) -> None: ...
    def __delattr__(self, name: str) -> None: ...
    def _set_public_attribute(self, name: str, value: Any) -> None: ...
    def _first_step(self, grads: np.ndarray | Sequence[np.ndarray]) -> None: ...
    def step(self, grads: np.ndarray | Sequence[np.ndarray]) -> None: ...

class Layout:
    params: list[np.ndarray]
    single: bool
    slot_names: tuple[str, ...]
    dtypes: list[np.dtype]
    shapes: list[tuple[int, ...]]
    def __init__(
        self,
        params: list[np.ndarray],  # float32/float64, native byte order, C-contiguous, writeable
        single: bool,
        slot_names: tuple[str, ...],
    ) -> None: ...

def check_grads(
    grads: np.ndarray | Sequence[np.ndarray],
    layout: Layout,
    spans: np.ndarray | None = ...,  # int64 rows (start, end, index), see memory_spans
) -> list[np.ndarray]: ...

def kernel_kinds() -> tuple[str, ...]: ...  # the kernels' names, in declaration order
# (inputs, slots, running scalars as (name, initial value) pairs)
def kernel_spec(
    kind: str,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, float], ...]]: ...

class Rule:
    lr: float  # double
    busy: bool  # read-only
    kind: str  # read-only: a name of kernel_kinds()
    inputs: dict[str, float]  # read-only: kernel_spec(kind)[0] -> value (flags 0.0 / 1.0)
    def __init__(
        self,
        kind: str,  # one of kernel_kinds()
        **inputs: float | bool,  # exactly kernel_spec(kind)[0]
    ) -> None: ...
    def step(
        self,
        grads: np.ndarray | Sequence[np.ndarray],  # IN, checked here
        layout: Layout,  # the parameters (INOUT) and their record
        spans: np.ndarray | None,
        slots: list[tuple[np.ndarray | None, ...]],  # INOUT state, the rule's slot order
        step: int,  # Py_ssize_t, updates made so far, in [0, MAX_STEP)
        n_threads: int,  # int
        scalars: list[tuple[np.ndarray, ...]] | None = ...,  # INOUT 0-d float64, per parameter
    ) -> int: ...  # step + 1

def step_groups(
    rules: list[Rule],  # one per group, one kernel
    ends: tuple[int, ...],  # Py_ssize_t: group g holds parameters ends[g - 1]:ends[g]
    starts: tuple[int, ...],  # Py_ssize_t: the step count when each group was added
    grads: np.ndarray | Sequence[np.ndarray],  # IN, checked here
    layout: Layout,  # every group's parameters (INOUT) and their record
    spans: np.ndarray | None,
    slots: list[tuple[np.ndarray | None, ...]],  # INOUT state, the rules' slot order
    step: int,  # Py_ssize_t, the optimizer's updates so far, in [0, MAX_STEP)
    n_threads: int,  # int
    scalars: list[tuple[np.ndarray, ...]] | None = ...,  # INOUT 0-d float64, per parameter
) -> int: ...  # step + 1
