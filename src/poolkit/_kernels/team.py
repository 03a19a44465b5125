"""The body each thread of torch's OpenMP team runs for poolkit (see
:class:`poolkit._threads._OmpTeam`): a short wait, then poolkit's Python callback.

Its own module, imported only when poolkit first enters torch's team: a ``cfunc`` compiles (or
loads from Numba's cache) when it is defined, and a process without torch never needs it.
"""

from llvmlite import ir
from numba import carray, cfunc, types
from numba.extending import intrinsic

from .spin import _cycles, _pause


@intrinsic
def _call_void(typingctx, fn_t, arg_t):
    """Call the C function ``void f(void *)`` at address ``fn`` with ``arg``."""
    sig = types.void(types.int64, types.voidptr)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()])
        builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [args[1]])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _call_int(typingctx, fn_t):
    """Call the C function ``int f(void)`` at address ``fn``."""
    sig = types.int32(types.int64)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        return builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [])

    return sig, codegen


@cfunc(types.void(types.voidptr), cache=True)
def team_body(data):
    """The body libgomp runs on each thread of the team. ``data`` points to three int64:
    the address of poolkit's Python callback (``void(void *)``, given ``data``), of
    ``omp_get_thread_num`` and a number of CPU cycles. Every thread but the caller's (thread
    0) first waits that many cycles: the caller holds the GIL for the few microseconds until
    its first range starts, and a thread asking for the GIL then sleeps on it and wakes tens of
    microseconds after it is free (measured: 73-84 against 58-59 us for a call of two 50 us
    ranges). Addresses come in ``data``, not as constants, so the cached code holds none."""
    d = carray(data, 3, types.int64)
    if _call_int(d[1]) != 0:
        t0 = _cycles()
        for _ in range(d[2] // 10):
            if _cycles() - t0 > d[2]:
                break
            _pause()
    _call_void(d[0], data)
