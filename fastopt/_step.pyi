# Typing stub for fastopt._step (C types in trailing comments).
from typing import Literal, Sequence

import numpy as np

def check_grads(
    grads: np.ndarray | Sequence[np.ndarray],
    params: list[np.ndarray],
    single: bool,
) -> list[np.ndarray]: ...

class Rule:
    lr: float  # double
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
    def enter(self) -> None: ...  # RuntimeError if another thread is stepping
    def leave(self) -> None: ...
    def apply(
        self,
        params: list[np.ndarray],  # INOUT, each C-contiguous float32/float64
        grads: list[np.ndarray],  # IN, checked by check_grads
        slots: list[tuple[np.ndarray | None, ...]],  # INOUT state, the rule's slot order
        step: int,  # Py_ssize_t, t >= 1
        n_threads: int,  # int
    ) -> None: ...
