"""The wait of an idle worker thread (:mod:`poolkit._threads`) before it sleeps.

A worker that blocks on a lock as soon as its task ends is asleep when the next short call of
a training step hands it a range, and on this project's VM waking it took 60-80 us a call
(median, measured in a training run: the idle virtual CPU halts and the host must schedule it
again), about as long as some whole kernels there. So a worker first watches its task counter
for a bounded time, without the GIL, and only then sleeps on its lock.

:func:`wait_for_task` reads the counter with an atomic acquire load (a plain load may be
hoisted out of the loop: the compiler may assume no other thread writes it), pauses the CPU
between reads (``pause``: kinder to a sibling hyperthread and to the host), and bounds the
wait by the CPU's cycle counter. Once a task is posted it waits a little longer before it
returns, because the poster holds the GIL until its own kernel starts: a worker asking for
the GIL at once would go to sleep on it, and be woken as late as before.
"""

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _load_acquire(typingctx, arr_t):
    """``arr[0]`` of an int64 array, as an atomic load with acquire ordering."""
    sig = types.int64(arr_t)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.load_atomic(a.data, "acquire", 8)

    return sig, codegen


@intrinsic
def _pause(typingctx):
    """The CPU's spin-wait hint (x86)."""

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.x86.sse2.pause",
                                              fnty=ir.FunctionType(ir.VoidType(), []))
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _cycles(typingctx):
    """The CPU's cycle counter (the TSC on x86)."""

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.readcyclecounter",
                                              fnty=ir.FunctionType(ir.IntType(64), []))
        return builder.call(fn, [])

    return types.int64(), codegen


@njit("int64(int64[::1], int64, int64, int64)", cache=True, nogil=True)
def wait_for_task(counter, seen, max_cycles, settle_cycles):
    """``counter[0]`` once it differs from ``seen`` (then after ``settle_cycles`` more), or
    after about ``max_cycles`` cycles of waiting. Holds no GIL. Each loop is also capped by a
    count (a ``pause`` takes at least ~10 cycles), so it ends whatever the cycle counter does."""
    t0 = _cycles()
    v = _load_acquire(counter)
    for _ in range(max_cycles // 10):
        if v != seen or _cycles() - t0 > max_cycles:
            break
        _pause()
        v = _load_acquire(counter)
    if v != seen:
        t1 = _cycles()
        for _ in range(settle_cycles // 10):
            if _cycles() - t1 > settle_cycles:
                break
            _pause()
    return v
