"""The kernels' own declarations (fastopt._step.kernel_spec) against the classes that use
them, ``Rule``'s checks of its inputs, and the typing stubs against the real signatures."""

import ast
import inspect
import pathlib

import numpy as np
import pytest

from fastopt import _kernels, _step
from fastopt._registry import RECORDS

CLASSES = [record.cls for record in RECORDS]


def _distinct_inputs(kind):
    """Every input of ``kind``, each with a value of its own."""
    return {name: 0.5 + k for k, name in enumerate(_step.kernel_spec(kind)[0])}


def test_kernel_kinds_are_the_declared_kernels():
    kinds = _step.kernel_kinds()
    assert kinds == tuple(d[0] for d in _kernels.declarations())
    assert len(set(kinds)) == len(kinds)
    for kind in kinds:
        inputs, slots, scalars = _step.kernel_spec(kind)
        assert inputs[0] == "lr" and len(set(inputs)) == len(inputs)
        assert all(type(n) is str for n in inputs + slots)
        # Running scalars: (name, initial value) pairs, names of their own.
        names = [name for name, _ in scalars]
        assert all(type(n) is str and type(v) is float for n, v in scalars)
        assert len(set(names)) == len(names) and not set(names) & set(inputs + slots)
        assert len(scalars) <= 2  # MAX_SCALARS


def test_every_kernel_is_some_optimizers_and_every_optimizer_a_kernels():
    used = {cls(np.zeros(3))._rule.kind for cls in CLASSES}
    assert used == set(_step.kernel_kinds())


@pytest.mark.parametrize("kind", ["", "Adam", "adamw", "no_such_kernel"])
def test_kernel_spec_refuses_unknown_kinds(kind):
    with pytest.raises(ValueError, match=f"unknown kernel kind {kind!r}"):
        _step.kernel_spec(kind)
    with pytest.raises(ValueError, match=f"unknown kernel kind {kind!r}"):
        _step.Rule(kind, lr=0.1)


def test_kernel_spec_refuses_a_kind_that_is_no_string():
    with pytest.raises(ValueError, match="unknown kernel kind"):
        _step.kernel_spec(0)
    with pytest.raises(TypeError):
        _step.Rule(0, lr=0.1)


@pytest.mark.parametrize("kind", _step.kernel_kinds())
def test_rule_takes_exactly_the_kernels_inputs_by_name(kind):
    values = _distinct_inputs(kind)
    rule = _step.Rule(kind, **values)
    assert rule.kind == kind
    assert rule.inputs == values  # each name in a slot of its own, in the declared order
    assert list(rule.inputs) == list(_step.kernel_spec(kind)[0])
    assert rule.lr == values["lr"]
    rule.lr = 0.25
    assert rule.lr == 0.25 and rule.inputs["lr"] == 0.25


@pytest.mark.parametrize("kind", _step.kernel_kinds())
def test_rule_refuses_missing_inputs_naming_them(kind):
    values = _distinct_inputs(kind)
    for name in values:
        partial = {k: v for k, v in values.items() if k != name}
        with pytest.raises(ValueError, match=f"missing '{name}'"):
            _step.Rule(kind, **partial)
    with pytest.raises(ValueError, match="missing 'lr'"):
        _step.Rule(kind)


@pytest.mark.parametrize("kind", _step.kernel_kinds())
def test_rule_refuses_unknown_inputs_naming_them(kind):
    values = _distinct_inputs(kind)
    others = {name for k in _step.kernel_kinds() for name in _step.kernel_spec(k)[0]}
    for name in sorted(others - set(values)) + ["betas", "lr_"]:
        with pytest.raises(ValueError, match=f"unknown '{name}'"):
            _step.Rule(kind, **values, **{name: 0.0})


def test_rule_refuses_inputs_that_are_no_numbers():
    values = _distinct_inputs("adam")
    for bad in ("0.9", None, [0.9]):
        with pytest.raises(TypeError, match="beta1"):
            _step.Rule("adam", **{**values, "beta1": bad})


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_optimizer_uses_its_kernels_inputs_and_slot_order(cls):
    opt = cls(np.zeros(3))
    rule = opt._rule
    inputs, slots, _ = _step.kernel_spec(rule.kind)
    # The state arrays travel to the kernel in the class's slot order: it must be the
    # kernel's.
    assert cls.record.slot_names == tuple(cls._slot_names) == slots
    assert tuple(rule.inputs) == inputs
    # Where a hyperparameter and a kernel input share a name, the kernel gets its value.
    shared = set(opt.hyperparameters) & set(inputs)
    assert "lr" in shared
    for name in shared:
        assert rule.inputs[name] == float(opt.hyperparameters[name]), name
    # The state a step makes is a subset of the slots, in slot order, then the kernel's
    # running scalars (0-d float64 arrays), every one of them.
    opt.step(np.ones(3))
    made = [name for name in opt.state[0] if name in slots]
    assert made == [name for name in slots if name in made]
    scalars = [name for name, _ in _step.kernel_spec(rule.kind)[2]]
    assert list(opt.state[0])[len(made):] == scalars
    for name in scalars:
        value = opt.state[0][name]
        assert value.dtype == np.float64 and value.shape == ()


# ---------------------------------------------------------------------------------------------
# Typing stubs

def _stub_functions(module):
    """{qualified name: ast.FunctionDef} of the module's stub (functions, class methods)."""
    path = pathlib.Path(module.__file__).parent / (module.__name__.split(".")[-1] + ".pyi")
    tree = ast.parse(path.read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    found[f"{node.name}.{item.name}"] = item
    return found


def _stub_parameters(node):
    a = node.args
    params = [(p.arg, "POSITIONAL_ONLY") for p in a.posonlyargs]
    params += [(p.arg, "POSITIONAL_OR_KEYWORD") for p in a.args]
    if a.vararg:
        params.append((a.vararg.arg, "VAR_POSITIONAL"))
    params += [(p.arg, "KEYWORD_ONLY") for p in a.kwonlyargs]
    if a.kwarg:
        params.append((a.kwarg.arg, "VAR_KEYWORD"))
    return params


@pytest.mark.parametrize("module", [_step, _kernels], ids=lambda m: m.__name__)
def test_stub_matches_the_real_signatures(module):
    stub = _stub_functions(module)
    # Every Python-level function of the module is in its stub.
    real = {name for name, obj in vars(module).items()
            if callable(obj) and not isinstance(obj, type) and not name.startswith("__")
            and getattr(obj, "__module__", None) == module.__name__}
    assert real <= set(stub), real - set(stub)
    for qualname, node in stub.items():
        obj = module
        for part in qualname.split("."):
            if not hasattr(obj, part) and isinstance(obj, type):
                # A hook the Python subclass provides (OptimizerCore._first_step: Optimizer's).
                obj = next(sub for sub in obj.__subclasses__() if hasattr(sub, part))
            obj = getattr(obj, part)
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):  # a C slot without a signature
            continue
        kinds = [p.kind.name for p in signature.parameters.values()]
        if kinds[-2:] == ["VAR_POSITIONAL", "VAR_KEYWORD"]:
            continue  # (*args, **kwargs): a cdef class's __init__ tells nothing
        # (Positional-only is not told apart: C slots make ``self`` so, stubs rarely say it.)
        actual = [(p.name, p.kind.name.replace("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD"))
                  for p in signature.parameters.values()]
        expected = [(n, k.replace("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD"))
                    for n, k in _stub_parameters(node)]
        assert actual == expected, qualname


def test_rule_constructor_stub_is_kind_and_named_inputs():
    # (A cdef class's __init__ has no introspectable signature: checked from its stub.)
    node = _stub_functions(_step)["Rule.__init__"]
    assert [a.arg for a in node.args.args] == ["self", "kind"]
    assert node.args.kwarg is not None and node.args.kwarg.arg == "inputs"
