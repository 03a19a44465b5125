"""How poolkit compiles its kernels: one Numba dispatcher per specialisation, one signature each.

A kernel is written once as a factory ``make(*key) -> python function``; the key (a kernel
variant and a dtype, say) is a compile-time constant of the function it returns, so Numba
prunes the branches of the other variants. :class:`Kernel` turns each key into its own
dispatcher, compiled lazily for exactly ONE explicit signature and then frozen:

- its own name (``max_fwd__2x2_c1__float32``) in Numba's cache and in the loaded code. Numba
  names cache files and machine-code symbols after a function's qualified name plus a
  per-process counter, so closures sharing one qualified name, compiled in different processes
  and loaded side by side, could collide (a wrong variant, or a crash in the boxing of a
  result);
- one signature per cache index: Numba updates an index file by read-modify-write, so two
  processes adding different signatures of one function to one index at once can leave an
  entry pointing at the other's code. With one signature per index, concurrent writers can
  only write the same thing;
- read-only input arrays in the signature, so writable and read-only inputs share one
  compilation (a writable array converts to a read-only one, not the reverse).

Helpers called by the kernels are plain ``njit`` functions WITHOUT ``cache=True``: they are
compiled into (and cached with) each kernel that calls them, so a callee's own cache index
never gains several signatures from several processes.

The first call of a specialisation that is not in the cache compiles it (seconds); the
function :func:`set_notifier` installs decides how the user hears of it. A caller that has
another way to compute its call asks :meth:`Kernel.ready_entry` instead: a specialisation
missing from the cache then compiles in a separate process (``POOLKIT_BACKGROUND_COMPILE=0``:
never) while the caller computes without it, and loads once that process has ended.
"""

from __future__ import annotations

import sys
import threading
import time
import types

import numpy as np

from .._env import env_flag

__all__ = ["Kernel", "sig", "set_notifier", "compiled_specialisations", "loaded_symbols",
           "KERNELS", "OPTIONS"]

# Options of every kernel entry point. Kernels never raise Python exceptions on hot paths:
# bounds were validated before the call.
OPTIONS = dict(cache=True, nogil=True, boundscheck=False)

_compile_lock = threading.RLock()
_used: set[tuple[str, tuple]] = set()
#: (kernel name, key) -> the process compiling it into the cache
_jobs: dict[tuple[str, tuple], object] = {}
BACKGROUND_ENV = "POOLKIT_BACKGROUND_COMPILE"
KERNELS: list[Kernel] = []  # every Kernel defined, in definition order


def _default_notifier(message: str) -> None:
    if getattr(sys.stderr, "isatty", lambda: False)():
        print(f"poolkit: {message}", file=sys.stderr, flush=True)


_notify = _default_notifier


def set_notifier(fn) -> None:
    """``fn(message)`` is called before a kernel compiles (None: stay silent)."""
    global _notify
    _notify = fn or (lambda message: None)


def compiled_specialisations() -> set[tuple[str, tuple]]:
    """(kernel name, key) of every specialisation this process has compiled or loaded."""
    return set(_used)


def loaded_symbols() -> list[str]:
    """The machine-code names of every specialisation loaded in this process (each must be
    unique, whichever processes compiled them into the cache)."""
    return [cres.fndesc.mangled_name for k in KERNELS for d in k._dispatchers.values()
            for cres in d.overloads.values()]


def _nb_types():
    from numba import types

    return types


def sig(dtype, *codes: str):
    """A Numba signature from short codes, for kernels whose arrays are C-contiguous:

    ``x3`` read-only array of ``dtype`` with 3 dims, ``o3`` writable one; ``i2`` read-only
    int64 array (tables), ``j2`` writable int64 array; ``f2`` read-only float64 array;
    ``s`` a scalar of ``dtype``; ``i`` an int64; ``d`` a float64; ``b`` a boolean.
    """
    t = _nb_types()
    from numba import from_dtype

    scalar = from_dtype(np.dtype(dtype))
    args = []
    for code in codes:
        kind, nd = code[0], int(code[1:] or 0)
        if kind == "x":
            args.append(t.Array(scalar, nd, "C", readonly=True))
        elif kind == "o":
            args.append(t.Array(scalar, nd, "C"))
        elif kind == "i" and nd:
            args.append(t.Array(t.int64, nd, "C", readonly=True))
        elif kind == "j":
            args.append(t.Array(t.int64, nd, "C"))
        elif kind == "f":
            args.append(t.Array(t.float64, nd, "C", readonly=True))
        elif kind == "s":
            args.append(scalar)
        elif kind == "i":
            args.append(t.int64)
        elif kind == "d":
            args.append(t.float64)
        elif kind == "b":
            args.append(t.boolean)
        else:
            raise AssertionError(code)
    return t.void(*args)


def _key_name(key: tuple) -> str:
    return "__".join(str(getattr(k, "__name__", k)) for k in key).replace(".", "_")


#: Background compilations (see Kernel.ready_entry) one process runs at once: each takes a CPU.
max_background_jobs = 2


class Kernel:
    """A family of specialisations of one kernel: ``kernel[key]`` is the compiled dispatcher
    for ``key`` (a tuple of hashable compile-time constants, the last one a NumPy dtype).

    ``make(*key)`` returns the Python function for a key; ``signature(*key)`` its Numba
    signature (see :func:`sig`).
    """

    def __init__(self, name: str, make, signature, *, cost: float = 3.0, **options):
        self.name = name
        self._make = make
        self._signature = signature
        self._options = {**OPTIONS, **options}
        self._dispatchers: dict[tuple, object] = {}
        self._entries: dict[tuple, object] = {}
        self.cost = cost  # compile seconds measured here (2-core machine), for the notice
        KERNELS.append(self)

    def __getitem__(self, key) -> object:
        key = key if isinstance(key, tuple) else (key,)
        d = self._dispatchers.get(key)
        if d is None:
            d = self._build(key)
        return d

    def entry(self, key) -> object:
        """``key``'s compiled function without the dispatcher: Numba's wrapper of the machine
        code, which unboxes the arguments as its one signature says (0.5 against 0.85 us a
        call for a pooling kernel on a tiny input). It checks the dtypes but NOT the layout:
        only for callers whose arrays are C-contiguous by construction."""
        key = key if isinstance(key, tuple) else (key,)
        entry = self._entries.get(key)
        if entry is None:
            (cres,) = self[key].overloads.values()
            entry = self._entries[key] = cres.entry_point
        return entry

    def ready_entry(self, key) -> object | None:
        """``entry(key)`` if the specialisation is loaded or in Numba's cache. If not, None,
        and the specialisation compiles into the cache in a process of its own (``python -m
        poolkit._kernels.precompile``), for a caller that can compute its call without the
        kernel meanwhile; once that process has ended, the next call loads the kernel (or
        compiles it here if the process left nothing to load). Compiles here at once, as
        ``entry`` does, when ``POOLKIT_BACKGROUND_COMPILE=0``, when ``max_background_jobs``
        processes already run, or when no process can be started."""
        key = key if isinstance(key, tuple) else (key,)
        entry = self._entries.get(key)
        if entry is not None:
            return entry
        if key in self._dispatchers or not env_flag(BACKGROUND_ENV):
            return self.entry(key)
        with _compile_lock:
            process = _jobs.get((self.name, key))
            if process is not None:
                # (in a forked child, whose parent started the process, poll() says it ended)
                if process.poll() is None:
                    return None
                del _jobs[self.name, key]
                return self.entry(key)
            if self._build(key, compile_missing=False) is not None:
                return self.entry(key)
            if sum(p.poll() is None for p in _jobs.values()) >= max_background_jobs:
                return self.entry(key)
            from .precompile import start_worker

            try:
                process = start_worker([(self.name, key)])
            except (OSError, ValueError, TypeError):  # no interpreter to start (embedded)
                return self.entry(key)
            _jobs[self.name, key] = process
            _notify(f"compiling {self.name}__{_key_name(key)} in the background, once "
                    f"(~{self.cost:.0f} s); NumPy computes its calls until then")
            return None

    def _build(self, key: tuple, compile_missing: bool = True):
        """``key``'s dispatcher, loaded from the cache or compiled (``compile_missing``
        False: None instead of compiling)."""
        from numba import njit

        with _compile_lock:
            d = self._dispatchers.get(key)
            if d is not None:
                return d
            fn = self._function(key)
            d = njit(**self._options)(fn)
            signature = self._signature(*key)
            if not self._load_cached(d, signature):
                if not compile_missing:
                    return None
                t0 = time.perf_counter()
                _notify(f"compiling {fn.__name__}, once (~{self.cost:.0f} s)")
                d.compile(signature)
                self.last_compile_seconds = time.perf_counter() - t0
            d.disable_compile()
            self._dispatchers[key] = d
            _used.add((self.name, key))
            return d

    def _function(self, key: tuple):
        """A new function object for ``key`` named after the kernel and the key: ``make`` may
        return one shared function for several keys (a kernel that differs by dtype only),
        which must not be renamed in place."""
        fn = self._make(*key)
        name = f"{self.name}__{_key_name(key)}"
        copy = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__,
                                  fn.__closure__)
        copy.__qualname__ = name
        copy.__doc__ = fn.__doc__
        return copy

    @staticmethod
    def _load_cached(d, signature) -> bool:
        """Add the cached overload of ``signature`` if the cache has it (no compilation)."""
        cache = getattr(d, "_cache", None)
        try:
            cres = cache.load_overload(signature, d.targetctx) if cache is not None else None
        except Exception:  # an unreadable cache entry: compile instead
            cres = None
        if cres is None:
            return False
        d.add_overload(cres)
        return True

    def is_cached(self, key) -> bool:
        """True if ``key``'s specialisation is loaded in this process or in Numba's cache."""
        key = key if isinstance(key, tuple) else (key,)
        if key in self._dispatchers:
            return True
        from numba import njit

        d = njit(**self._options)(self._function(key))
        cache = getattr(d, "_cache", None)
        try:
            return cache is not None and cache.load_overload(
                self._signature(*key), d.targetctx
            ) is not None
        except Exception:
            return False
