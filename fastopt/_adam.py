"""Adam and AdamW (each with the AMSGrad variant)."""

from fastopt._base import Optimizer
from fastopt._step import Rule
from fastopt._validation import (
    check_betas,
    check_bool,
    check_eps,
    check_lr,
    check_weight_decay,
)

_ADAM_NOTES = r"""
    Notes
    -----
    At step :math:`t` (torch's order of operations; ``eps`` is added after the square root
    of the second moment has been bias-corrected):

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        {decay}
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(amsgrad)}, \quad
        \text{else } \hat v_t = v_t \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t} \,
        \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    AMSGrad takes the maximum of the *uncorrected* second moments. State: ``exp_avg``
    (:math:`m`), ``exp_avg_sq`` (:math:`v`), ``max_exp_avg_sq`` (amsgrad), all starting at zero.
"""


class Adam(Optimizer):
    r"""Adam: momentum on the gradient and RMSprop scaling, both bias-corrected
    (torch.optim.Adam).

    The default choice for most problems, noisy or not. ``weight_decay`` here is an L2 penalty
    added to the gradient; for decoupled weight decay use :class:`AdamW`.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-3
        Learning rate :math:`\gamma`, >= 0.
    betas : tuple of (float, float), default=(0.9, 0.999)
        Decay rates :math:`(\beta_1, \beta_2)` of the moment estimates, each in [0, 1).
    eps : float, default=1e-8
        Added to the bias-corrected root of the second moment, >= 0.
    weight_decay : float, default=0
        L2 penalty :math:`\lambda` added to the gradient, >= 0.
    amsgrad : bool, default=False
        Use the AMSGrad variant.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    AdamW : Adam with decoupled weight decay.
    {notes}
    References
    ----------
    .. [1] D. P. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR 2015.
    .. [2] S. J. Reddi, S. Kale, S. Kumar, "On the convergence of Adam and beyond", ICLR 2018.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.Adam(w, lr=0.1)
    >>> opt.step(2 * w)          # the first step moves each coordinate by lr
    >>> np.round(w, 6)
    array([ 0.9, -1.9])
    """

    _decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, n_threads=None):
        super().__init__(params, n_threads=n_threads, lr=lr, betas=betas, eps=eps,
                         weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)

    @classmethod
    def _check_hyperparameters(cls, lr, betas, eps, weight_decay, amsgrad, maximize):
        return dict(
            lr=check_lr(lr),
            betas=check_betas(betas),
            eps=check_eps(eps),
            weight_decay=check_weight_decay(weight_decay),
            amsgrad=check_bool("amsgrad", amsgrad),
            maximize=check_bool("maximize", maximize),
        )

    _slot_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    @classmethod
    def _state_names(cls, hyper):
        return cls._slot_names if hyper["amsgrad"] else cls._slot_names[:2]

    @classmethod
    def _make_rule(cls, hyper):
        beta1, beta2 = hyper["betas"]
        return Rule("adam", lr=hyper["lr"], beta1=beta1, beta2=beta2, eps=hyper["eps"],
                    weight_decay=hyper["weight_decay"], amsgrad=hyper["amsgrad"],
                    maximize=hyper["maximize"],
                    decoupled_weight_decay=cls._decoupled_weight_decay)


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay (torch.optim.AdamW).

    The parameter is shrunk by :math:`(1 - \gamma\lambda)` before the Adam step instead of
    adding :math:`\lambda\theta` to the gradient, so the decay is not rescaled by the adaptive
    denominator. Prefer it to Adam's L2 penalty for regularised models.

    Parameters
    ----------
    params : ndarray or list of ndarray
        Parameters, updated in place: any shape, float32 or float64, C-contiguous, writeable.
    lr : float, default=1e-3
        Learning rate :math:`\gamma`, >= 0.
    betas : tuple of (float, float), default=(0.9, 0.999)
        Decay rates :math:`(\beta_1, \beta_2)`, each in [0, 1).
    eps : float, default=1e-8
        Added to the bias-corrected root of the second moment, >= 0.
    weight_decay : float, default=1e-2
        Decoupled weight decay :math:`\lambda`, >= 0.
    amsgrad : bool, default=False
        Use the AMSGrad variant.
    maximize : bool, default=False
        Maximise the objective instead of minimising it.
    n_threads : int or None, default=None
        OpenMP threads for large arrays (``None``: OpenMP's default; ``-1``: all cores;
        ``|n_threads| <= 1024``, else ``ValueError``).

    See Also
    --------
    Adam : the same rule with an L2 penalty.
    {notes}
    References
    ----------
    .. [1] I. Loshchilov, F. Hutter, "Decoupled weight decay regularization", ICLR 2019.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> w = np.array([1.0, -2.0])
    >>> opt = fastopt.AdamW(w, lr=0.1, weight_decay=0.1)
    >>> opt.step(2 * w)          # shrink by 1 - lr * weight_decay, then the Adam step
    >>> np.round(w, 6)
    array([ 0.89, -1.88])
    """

    _decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, n_threads=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, n_threads=n_threads)


# The two classes share the Notes; only the weight-decay line differs.
_COUPLED = r"g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad \text{if } \lambda \ne 0 \\"
_DECOUPLED = r"\theta_{t-1} &\leftarrow (1 - \gamma\lambda)\, \theta_{t-1} \\"
Adam.__doc__ = Adam.__doc__.replace("{notes}", _ADAM_NOTES.replace("{decay}", _COUPLED))
AdamW.__doc__ = AdamW.__doc__.replace("{notes}", _ADAM_NOTES.replace("{decay}", _DECOUPLED))
