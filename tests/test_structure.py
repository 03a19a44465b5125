"""The structure issue 9 asks for, checked on the source: no import cycles between the modules
named there, lab/ does not import the demo app, one atomic writer, the kernels are serial
nogil functions run through poolkit._threads, one list of kinds and of datasets, pooling layers
are real subclasses built from a kind's layer class."""

from __future__ import annotations

import ast
import inspect
import os
import pathlib

import pytest

import poolkit
from poolkit import kinds
from poolkit.data import DATASETS

SRC = pathlib.Path(poolkit.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: pathlib.Path, top_level_only: bool) -> set[str]:
    """Modules of poolkit that ``path`` imports (at module level only, or anywhere)."""
    tree = ast.parse(path.read_text())
    me = _module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            if node.level == 0:
                mod = node.module or ""
            for alias in node.names:
                out.add(f"{mod}.{alias.name}")
            out.add(mod)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    modules = {_module_name(p) for p in SRC.rglob("*.py")}
    return {m for m in out if m in modules}


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    return {_module_name(p): _imports(p, top_level_only) for p in SRC.rglob("*.py")}


@pytest.mark.parametrize("a,b", [("poolkit.keras.models", "poolkit.keras.saving"),
                                 ("poolkit.lab.figures", "poolkit.lab.sweep")])
def test_named_import_cycles_are_gone(a, b):
    g = _graph(top_level_only=False)  # not even through a function-level import
    assert not (b in g[a] and a in g[b]), (a, b)


def test_saving_is_a_pure_archive_module():
    g = _graph(top_level_only=False)
    assert not any(m.startswith("poolkit.keras.") and m != "poolkit.keras.saving"
                   for m in g["poolkit.keras.saving"])


def test_no_import_cycles_at_module_level():
    g = _graph(top_level_only=True)
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for n in g.get(m, ()):
            if n == m or n not in g or n.startswith(m + "."):
                continue  # a package importing its own submodules is not a cycle
            if state.get(n) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(stack + [n])}")
            if n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])


def test_the_library_does_not_import_the_demo_app():
    g = _graph(top_level_only=False)
    users = sorted(m for m, deps in g.items() if "poolkit.demo" in deps)
    assert users == ["poolkit.cli"]


def test_one_atomic_writer():
    writers = sorted(_module_name(p) for p in SRC.rglob("*.py")
                     if any(w in p.read_text() for w in ("mkstemp", "os.replace(")))
    assert writers == ["poolkit._io"]


MY_KERNELS = ("conv", "dense", "optim", "maxpool", "avgpool", "windows", "fractional", "unpool",
              "blur")


@pytest.mark.parametrize("name", MY_KERNELS)
def test_kernels_are_serial_nogil_and_cached(name):
    """Every kernel is a _jit.Kernel: serial, GIL-free, cached under its own name with one
    signature per specialisation; helpers are compiled into the kernels that call them and
    are not cached on their own (their cache index could gain signatures from several
    processes at once)."""
    import importlib

    from poolkit._kernels import _jit

    mod = importlib.import_module(f"poolkit._kernels.{name}")
    text = (SRC / "_kernels" / f"{name}.py").read_text()
    assert "prange" not in text and "parallel=True" not in text
    kernels = [v for v in vars(mod).values() if isinstance(v, _jit.Kernel)]
    assert kernels
    for k in kernels:
        assert k._options["nogil"] is True and k._options["cache"] is True, k.name
        assert not k._options.get("parallel", False), k.name
    helpers = [v for v in vars(mod).values() if hasattr(v, "targetoptions")]
    for f in helpers:
        assert not f.targetoptions.get("cache", False), f
    names = [k.name for k in _jit.KERNELS]
    assert len(names) == len(set(names))


def test_nothing_sets_numba_threads():
    offenders = sorted(_module_name(p) for p in SRC.rglob("*.py")
                       if "numba.set_num_threads" in p.read_text()
                       or "numba.get_num_threads" in p.read_text())
    assert offenders == []


def test_kinds_and_datasets_have_one_list_each():
    from poolkit import cli
    from poolkit.lab.models import DOWNSAMPLING_KINDS

    p = cli._parser()
    sub = next(a for a in p._actions if a.dest == "command").choices
    opts = {(cmd, a.dest): a.choices for cmd, sp in sub.items() for a in sp._actions}
    assert tuple(opts[("train", "pool")]) == kinds.POOL_KINDS
    assert tuple(opts[("train", "dataset")]) == DATASETS
    assert tuple(opts[("sweep", "dataset")]) == DATASETS
    assert tuple(opts[("sweep", "kinds")]) == DOWNSAMPLING_KINDS == ("none", *kinds.POOL_KINDS,
                                                                    "conv")
    # The places that kept their own copies: the CLI, the demo, the lab, the Keras layers.
    for path in [SRC / "cli.py", SRC / "demo.py", *(SRC / "lab").rglob("*.py"),
                 *(SRC / "keras").rglob("*.py"), *(SRC / "data").rglob("*.py")]:
        text = path.read_text()
        if path.name != "datasets.py":
            assert '"mnist-sample", "mnist", "fashion-mnist"' not in text, path
        for copy in ('choices=["max", "avg"]', 'not in ("max", "avg")', "POOL_TYPES",
                     '"none", "max", "avg", "conv"', '("MaxPooling2D", "AveragePooling2D")'):
            assert copy not in text, (path, copy)


@pytest.mark.parametrize("kind", kinds.POOL_KINDS)
def test_a_pooling_layer_is_built_from_its_kinds_layer_class(kind):
    from poolkit.keras import layers
    from poolkit.lab.models import has_layer, pooling_layer, tutorial_model

    assert has_layer(kind)
    # an adaptive layer is defined by its output size, the others by window and stride
    extra = {"output_size": 13} if kinds.get_kind(kind).family == "adaptive" else {}
    layer = pooling_layer(kind, 2, 2, "valid", **extra)
    assert type(layer).__name__ == kinds.get_kind(kind).layer2d
    assert isinstance(layer, layers.Layer)
    assert tutorial_model(kind).layers[1].__class__ is type(layer)


def test_pooling_layers_are_real_subclasses():
    from poolkit.keras import layers
    from poolkit.keras.layers.pooling import windowed as pooling

    for name in ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
                 "AveragePooling2D", "AveragePooling3D", "MinPooling2D"):
        cls = getattr(layers, name)
        assert issubclass(cls, layers.BasePooling) and cls.__module__ == pooling.__name__
        assert f"class {name}(BasePooling)" in inspect.getsource(pooling)
        assert "pool_size" in inspect.signature(cls).parameters
        assert cls.__doc__ and "floor((L - k) / s) + 1" in cls.__doc__
    calls = [n for n in ast.walk(ast.parse(inspect.getsource(pooling)))
             if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "type"
             and len(n.args) == 3]
    assert not calls  # no classes made by type(name, bases, dict)


def test_layers_live_where_keras_puts_them():
    layers_dir = SRC / "keras" / "layers"
    assert sorted(p.name for p in layers_dir.glob("*.py")) == [
        "__init__.py", "activations.py", "base.py", "convolutional.py", "core.py",
        "regularization.py", "reshaping.py"]
    # pooling is a package, one module per family, as Keras's layers/pooling/ is a package
    assert sorted(p.name for p in (layers_dir / "pooling").glob("*.py")) == [
        "__init__.py", "adaptive.py", "antialiased.py", "base.py", "global_pooling.py",
        "windowed.py"]
    assert not (SRC / "keras" / "layers.py").exists()
    assert not (SRC / "keras" / "_conv_kernels.py").exists()
    assert max(len(p.read_text().splitlines()) for p in layers_dir.rglob("*.py")) < 350
    assert os.path.exists(SRC / "_kernels" / "conv.py")
