"""Adafactor (torch.optim.Adafactor): factored second moments and a relative step size.

Not an elementwise rule: each parameter's step is scaled by two norms of the whole
parameter, and a parameter of two or more dimensions keeps its second moments factored over
its last two dimensions (``row_var``, ``col_var``, smaller than the parameter). So the class
steps each parameter through its own kernel entry, with the parameter's shape
(``fastopt._kernels.adafactor_step``, in fastopt/_kernels_impl.pxi), rather than through the
elementwise ``Rule``. The minimize drivers, whose parameter is one vector, run the same
kernel's vector path through the ``Rule`` as every other optimizer.
"""

import math
import threading
from collections.abc import Mapping

import numpy as np

from fastopt import _kernels
from fastopt._base import Optimizer
from fastopt._fpenv import flushed
from fastopt._record import (
    Hyperparameter,
    OptimizerRecord,
    Racer,
    StateSlot,
    lr,
    maximize,
    real,
    weight_decay,
)
from fastopt._step import check_grads
from fastopt._validation import MAX_STEP, check_pair, check_real


def check_eps_pair(eps):
    """Return Adafactor's ``eps`` as ``(eps1, eps2)``: eps1 None or a float >= 0, eps2 a
    float >= 0 (torch's checks)."""
    eps1, eps2 = check_pair("eps", eps, "epsilon pair")
    if eps1 is not None:
        eps1 = check_real("eps[0]", eps1, "epsilon1 value", low=0.0)
    return (eps1, check_real("eps[1]", eps2, "epsilon2 value", low=0.0))


def _kernel_inputs(hyper):
    eps1, eps2 = hyper["eps"]
    return dict(lr=hyper["lr"], beta2_decay=hyper["beta2_decay"],
                eps1=-1.0 if eps1 is None else eps1,  # (the kernel's "None")
                eps2=eps2, d=hyper["d"], weight_decay=hyper["weight_decay"],
                maximize=hyper["maximize"])


class Adafactor(Optimizer):
    r"""Adafactor: factored second moments and a step relative to the parameter's size
    (torch.optim.Adafactor).

    Memory-light adaptive steps: for a parameter of two or more dimensions only the means of
    the squared gradient over each row and each column of its last two dimensions are kept
    (``n + m`` numbers for an ``n x m`` matrix, not ``n m``). The step is relative: the
    learning rate scales the parameter's root mean square, and the update is clipped to a
    root mean square of at most ``d``.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
        Those of two or more dimensions are factored over their last two dimensions.
    lr : float, default=1e-2
        Largest relative step :math:`\gamma`, >= 0 (the relative step size is
        :math:`\rho_t = \min(\gamma, 1/\sqrt{t})`).
    beta2_decay : float, default=-0.8
        Decay exponent :math:`c` of the second-moment weight
        :math:`\hat\beta_{2,t} = 1 - t^{c}`, <= 0.
    eps : tuple of (float or None, float), default=(None, 1e-3)
        :math:`(\epsilon_1, \epsilon_2)`: :math:`\epsilon_1` bounds the variance estimate
        from below (None: the parameter dtype's machine epsilon, as torch), :math:`\epsilon_2`
        the parameter's root mean square in the step size; each >= 0.
    d : float, default=1.0
        Clipping threshold :math:`d` of the update's root mean square, >= 1.
    weight_decay : float, default=0
        Decoupled weight decay :math:`\lambda` (the parameter shrinks by
        :math:`1 - \gamma\lambda`), >= 0.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    Adam : full (unfactored) second moments with a first moment and a fixed step size.

    Notes
    -----
    At step :math:`t`, for a parameter :math:`\theta` of :math:`N` elements (torch's order
    of operations: the step size is taken from :math:`\theta_{t-1}` before the weight
    decay; ``max`` and ``min`` are Python's, so a NaN norm gives way to the other argument):

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        \hat\beta_{2,t} &= 1 - t^{c}, \qquad \rho_t = \min(\gamma, 1/\sqrt{t}) \\
        \alpha_t &= \max\big(\epsilon_2, \operatorname{RMS}(\theta_{t-1})\big)\, \rho_t,
        \qquad \operatorname{RMS}(x) = \lVert x \rVert_2 / \sqrt{N} \\
        \theta_{t-1} &\leftarrow (1 - \gamma\lambda)\, \theta_{t-1}
        \quad \text{if } \lambda \ne 0 \\
        R_t &= \hat\beta_{2,t} R_{t-1} + (1 - \hat\beta_{2,t})\,
        \operatorname{mean}_{\text{last}}(g_t^2), \quad
        C_t = \hat\beta_{2,t} C_{t-1} + (1 - \hat\beta_{2,t})\,
        \operatorname{mean}_{\text{second last}}(g_t^2) \\
        \hat V_t &= \frac{R_t C_t}{\max(\operatorname{mean}_{\text{second last}}(R_t),
        \epsilon_1)} \quad \text{(two or more dimensions; else }
        \hat V_t = V_t = \hat\beta_{2,t} V_{t-1} + (1 - \hat\beta_{2,t})\, g_t^2) \\
        U_t &= g_t / \sqrt{\max(\hat V_t, \epsilon_1^2)} \\
        \theta_t &= \theta_{t-1} - \frac{\alpha_t}{\max\big(1,
        \operatorname{RMS}(U_t) / d\big)}\, U_t

    The means are over the last two dimensions (of each matrix of a batch of them, for three
    or more); :math:`R_t C_t` is their outer product. The moving averages are
    ``lerp`` as torch computes them; on the first step :math:`\hat\beta_{2,1} = 0`, so they
    start at the first squared gradient. Like torch, :math:`\epsilon_1` is added neither to
    the squared gradient nor to the factors (the paper does), only to the estimate. No
    first moment is kept (torch has none). With ``eps=(None, ...)``, :math:`\epsilon_1` is
    the machine epsilon of each parameter's own dtype (torch takes the first parameter's for
    all). An empty parameter is left alone (torch divides by its size).

    State, as torch names it: ``row_var`` (:math:`R`, shape ``(..., n, 1)``) and ``col_var``
    (:math:`C`, shape ``(..., 1, m)``) for a parameter of shape ``(..., n, m)``;
    ``variance`` (:math:`V`, the parameter's shape) for one of 0 or 1 dimension; all start
    at zero. The minimize drivers' ``x`` is a vector: the unfactored path.

    Each step reads the arrays in two passes (a vector) or three (a matrix: the update needs
    every row's and column's mean, and its norm the whole update); sums are accumulated in
    double by blocks fixed by the shape, so results do not depend on ``n_threads``.

    References
    ----------
    .. [1] N. Shazeer, M. Stern, "Adafactor: adaptive learning rates with sublinear memory
       cost", ICML 2018, https://arxiv.org/abs/1804.04235.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> W = np.ones((2, 3))
    >>> opt = fastopt.Adafactor(W)
    >>> opt.step(W.copy())               # a step of lr * RMS(W) = 0.01
    >>> np.round(W, 6)
    array([[0.99, 0.99, 0.99],
           [0.99, 0.99, 0.99]])
    >>> opt.state[0]["row_var"].shape, opt.state[0]["col_var"].shape
    ((2, 1), (1, 3))
    """

    record = OptimizerRecord(
        method="adafactor",
        kernel="adafactor",
        hyperparameters=(
            lr(1e-2),
            real("beta2_decay", -0.8, high=0.0, sample=(-1.0, -0.5),
                 what="beta2_decay value"),
            Hyperparameter("eps", (None, 1e-3), check_eps_pair,
                           ((1e-10, 1e-6), (1e-4, 1e-2))),
            real("d", 1.0, low=1.0, sample=(1.0, 3.0), what="clipping threshold d"),
            weight_decay(),
            maximize(),
        ),
        state=(StateSlot("row_var", nonnegative=True), StateSlot("col_var", nonnegative=True),
               StateSlot("variance", nonnegative=True)),
        kernel_inputs=_kernel_inputs,
        # (no "rosenbrock": without momentum its steps of about rho_t = 1/sqrt(t) times
        # RMS(x) still circle the minimum after 50,000 steps)
        options={"example": {"lr": 0.1}, "quadratic": {"lr": 0.1},
                 "least_squares": {"lr": 0.1}},
        racers=(Racer("adafactor", "Adafactor", demo={"lr": 0.1},
                      style=("#2f4f4f", (0, (2, 1, 2, 1, 2, 4))),
                      race_lr={"rosenbrock": 0.01, "beale": 0.0046, "booth": 0.32,
                               "himmelblau": 0.46, "saddle": 3.2, "valley": 0.22,
                               "noisy_rosenbrock": 0.0046}),),
        torch="Adafactor",
        bench={},
    )

    elementwise = False  # (the step reads norms of the whole parameter)

    # -- per-parameter state: factored (>= 2 dimensions) or not ------------------------------

    @classmethod
    def _param_state_names(cls, hyper, param):
        return ("row_var", "col_var") if param.ndim >= 2 else ("variance",)

    @classmethod
    def _state_shape(cls, name, param):
        shape = param.shape
        if name == "row_var":
            return (*shape[:-1], 1)
        if name == "col_var":
            return (*shape[:-2], 1, shape[-1])
        return shape

    # -- the step: each parameter through the kernel entry that knows its shape --------------

    def _step_lock(self):
        lock = self.__dict__.get("_lock")
        return lock if lock is not None else self.__dict__.setdefault("_lock", threading.Lock())

    def _check_not_busy(self, what):
        if self._step_lock().locked():
            raise RuntimeError(f"cannot {what} while step() is running in another thread")
        super()._check_not_busy(what)

    def step(self, grads):
        """Apply one update to every parameter, in place (see ``Optimizer.step``).

        Raises
        ------
        TypeError, ValueError
            On a bad gradient, or a parameter or state array that is no longer what the
            optimizer was built for; nothing is modified then.
        RuntimeError
            If another thread is inside ``step`` of this optimizer.
        """
        if self._rule is None or self._layout is None:
            raise RuntimeError("this optimizer was not initialised")
        lock = self._step_lock()
        if not lock.acquire(blocking=False):
            raise RuntimeError("step() is already running in another thread for this "
                               "optimizer: one optimizer must not be stepped from two threads "
                               "at once (use one optimizer per thread)")
        try:
            with flushed(self._flush_subnormals):  # (flush_subnormals: FTZ/DAZ set here)
                self._locked_step(grads)
        finally:
            lock.release()

    def _locked_step(self, grads):
        if self._step >= MAX_STEP:
            raise ValueError(f"Invalid step: step={self._step} must be in [0, {MAX_STEP})")
        checked = check_grads(grads, self._layout, self._spans)
        fresh = self._slots is None
        if fresh:
            self._ensure_state()
        try:
            self._check_state_arrays()
        except BaseException:
            if fresh:
                self._set_state(self._step, None)
            raise
        step = (_kernels._avx2_module if _kernels.kernel_isa() == "avx2"
                else _kernels).adafactor_step
        # (each parameter with its group's hyperparameters and update count)
        for p, g, s, h, t in zip(self._params, checked, self._state, self._param_hypers(),
                                 self._param_counts()):
            eps1, eps2 = h["eps"]
            t += 1
            if p.ndim >= 2:
                row_var, col_var, variance = s["row_var"], s["col_var"], None
                rows, cols = p.shape[-2:]
                batch = math.prod(p.shape[:-2])
                row_var, col_var = row_var.reshape(-1), col_var.reshape(-1)
            else:
                row_var = col_var = None
                variance, batch, rows, cols = s["variance"].reshape(-1), 0, 0, 0
            step(p.reshape(-1), g.reshape(-1), row_var, col_var, variance, batch, rows, cols,
                 h["lr"], h["beta2_decay"], -1.0 if eps1 is None else eps1, eps2, h["d"],
                 h["weight_decay"], h["maximize"], t, self._n_threads)
        self._step += 1

    def _check_state_arrays(self):
        """Each state array as it must be (NumPy lets users change an array in place); the
        messages are those of ``Optimizer.step``'s checks."""
        for i, (p, s) in enumerate(zip(self._params, self._state)):
            for name, a in s.items():
                shape = self._state_shape(name, p)
                what = f"state[{i}][{name!r}]"
                rule = (f"a state array must keep dtype {p.dtype} (native byte order) and "
                        f"shape {shape}, and stay C-contiguous and writeable, between steps; "
                        "nothing was updated")
                if a.dtype != p.dtype:
                    raise TypeError(f"{what} has dtype {a.dtype} now, the optimizer was built "
                                    f"for {p.dtype}: {rule}")
                if a.shape != shape:
                    raise ValueError(f"{what} has shape {a.shape} now, the optimizer was built "
                                     f"for {shape}: {rule}")
                if not a.flags.c_contiguous:
                    raise ValueError(f"{what} is no longer C-contiguous (strides {a.strides}): "
                                     f"{rule}")
                if not a.flags.writeable:
                    raise ValueError(f"{what} is no longer writeable: {rule}")

    # -- state dicts: eps[0] = None is saved as NaN, so that numpy.savez can store the dict
    # without pickling (an array holding None is an object array)

    def state_dict(self):
        """Return the optimizer's state as a flat dict (see ``Optimizer.state_dict``).

        ``eps`` is saved as a pair of floats, ``eps[0] = None`` as NaN, so that
        ``numpy.savez`` stores the dict without pickling; ``load_state_dict`` reads NaN back
        as None.
        """
        out = super().state_dict()
        for key in [k for k in out if k == "eps" or k.endswith(".eps")]:  # (or per group)
            eps1, eps2 = out[key]
            out[key] = (float("nan") if eps1 is None else eps1, eps2)
        return out

    def load_state_dict(self, state_dict):
        """Restore a state saved by ``state_dict()`` (see ``Optimizer.load_state_dict``; a NaN
        ``eps[0]`` stands for None)."""
        if isinstance(state_dict, Mapping):
            for key in [k for k in state_dict
                        if k == "eps" or (isinstance(k, str) and k.startswith("param_groups.")
                                          and k.endswith(".eps"))]:  # (or per group)
                eps = state_dict[key]
                try:
                    first = eps[0] if len(eps) == 2 else None
                    nan = first is not None and not isinstance(first, (str, bytes)) and bool(
                        np.isnan(first))
                except (TypeError, ValueError, IndexError, KeyError):
                    nan = False
                if nan:
                    state_dict = {**state_dict, key: (None, eps[1])}
        super().load_state_dict(state_dict)
