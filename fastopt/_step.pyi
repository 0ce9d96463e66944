# Typing stub for fastopt._step (C types in trailing comments).
from typing import Any, Literal, Sequence

import numpy as np

MAX_STEP: int

class OptimizerCore:
    DELETE: object
    _rule: Rule
    _layout: Layout
    _spans: np.ndarray | None
    _slots: list[tuple[np.ndarray | None, ...]] | None
    _step: int  # Py_ssize_t
    _n_threads: int  # int
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

class Rule:
    lr: float  # double
    busy: bool  # read-only
    def __init__(
        self,
        kind: Literal["sgd", "adagrad", "rmsprop", "adadelta", "adam"],
        *,
        lr: float = ...,
        momentum: float = ...,
        dampening: float = ...,
        weight_decay: float = ...,
        lr_decay: float = ...,
        eps: float = ...,
        alpha: float = ...,
        rho: float = ...,
        beta1: float = ...,
        beta2: float = ...,
        nesterov: bool = ...,
        maximize: bool = ...,
        centered: bool = ...,
        amsgrad: bool = ...,
        decoupled_weight_decay: bool = ...,
    ) -> None: ...
    def step(
        self,
        grads: np.ndarray | Sequence[np.ndarray],  # IN, checked here
        layout: Layout,  # the parameters (INOUT) and their record
        spans: np.ndarray | None,
        slots: list[tuple[np.ndarray | None, ...]],  # INOUT state, the rule's slot order
        step: int,  # Py_ssize_t, updates made so far, in [0, MAX_STEP)
        n_threads: int,  # int
    ) -> int: ...  # step + 1
