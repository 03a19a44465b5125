"""Cross-entropy losses, mean over the batch, with their gradients.

On probabilities (``from_logits=False``, Keras's default) the loss clips p to [1e-7, 1 - 1e-7]
as Keras does. When a model ends in softmax, it calls :meth:`fused` on the logits instead:
``logsumexp(z) - z[y]`` and the exact gradient ``(softmax(z) - onehot(y)) / n``.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidType, InvalidValue

__all__ = [
    "Loss",
    "SparseCategoricalCrossentropy",
    "CategoricalCrossentropy",
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "get",
]

EPSILON = 1e-7


class Loss:
    sparse = True
    name = "loss"

    def __init__(self, from_logits: bool = False, name: str | None = None):
        self.from_logits = bool(from_logits)
        if name is not None:
            self.name = name

    def get_config(self) -> dict:
        return {"from_logits": self.from_logits}

    # -- targets -----------------------------------------------------------------------------
    def onehot(self, y_true, n: int, k: int, dtype) -> np.ndarray:
        """Targets as an (n, k) array of class probabilities, checked against the predictions."""
        y = np.asarray(y_true)
        if self.sparse:
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if y.shape != (n,):
                raise InvalidValue(
                    f"{self.name}: labels must have shape ({n},) (one class index per sample), "
                    f"got {y.shape}; for one-hot labels use loss='categorical_crossentropy'"
                )
            if y.dtype.kind not in "iu":
                if y.dtype.kind != "f" or not np.all(y == np.floor(y)):
                    raise InvalidType(f"{self.name}: labels must be integer class indices, "
                                    f"got dtype {y.dtype}")
                y = y.astype(np.int64)
            if y.size and (y.min() < 0 or y.max() >= k):
                raise InvalidValue(
                    f"{self.name}: labels must be in [0, {k}) for a model with {k} outputs, got "
                    f"values from {y.min()} to {y.max()}"
                )
            t = np.zeros((n, k), dtype)
            t[np.arange(n), y] = 1
            return t
        if y.shape != (n, k):
            raise InvalidValue(
                f"{self.name}: one-hot labels must have shape ({n}, {k}), got {y.shape}; for "
                f"class indices use loss='sparse_categorical_crossentropy'"
            )
        return y.astype(dtype, copy=False)

    # -- values and gradients ------------------------------------------------------------------
    def fused(self, y_true, logits: np.ndarray):
        """(mean loss, d loss / d logits) computed stably from the logits."""
        n, k = logits.shape
        t = self.onehot(y_true, n, k, logits.dtype)
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        logp = z - np.log(s)
        loss = float(-(t * logp).sum() / n)
        grad = e / s
        grad *= t.sum(axis=1, keepdims=True)  # = 1 for proper one-hot / probability targets
        grad -= t
        grad /= n
        return loss, grad.astype(logits.dtype, copy=False)

    def value_and_grad(self, y_true, y_pred: np.ndarray):
        """(mean loss, d loss / d y_pred)."""
        if self.from_logits:
            return self.fused(y_true, y_pred)
        n, k = y_pred.shape
        t = self.onehot(y_true, n, k, y_pred.dtype)
        s = y_pred.sum(axis=1, keepdims=True)
        p = y_pred / s
        pc = np.clip(p, EPSILON, 1 - EPSILON)
        loss = float(-(t * np.log(pc)).sum() / n)
        inside = (p >= EPSILON) & (p <= 1 - EPSILON)
        gp = np.where(inside, -t / pc, 0.0) / n
        # Through the normalisation p = y / sum(y).
        grad = (gp - (gp * p).sum(axis=1, keepdims=True)) / s
        return loss, grad.astype(y_pred.dtype, copy=False)

    def __call__(self, y_true, y_pred) -> float:
        """The mean loss of predictions ``y_pred`` (n, classes) against ``y_true``."""
        p = np.asarray(y_pred)
        if p.ndim != 2 or p.dtype.kind != "f":
            raise InvalidValue(f"{self.name}: y_pred must be a 2-D float array (n, classes), "
                               f"got {p.dtype} {p.shape}")
        return self.value_and_grad(y_true, p)[0]


class SparseCategoricalCrossentropy(Loss):
    """Labels are class indices, shape (n,) or (n, 1)."""

    sparse = True
    name = "sparse_categorical_crossentropy"


class CategoricalCrossentropy(Loss):
    """Labels are one-hot (or probability) rows, shape (n, classes)."""

    sparse = False
    name = "categorical_crossentropy"


def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False) -> float:
    return SparseCategoricalCrossentropy(from_logits)(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False) -> float:
    return CategoricalCrossentropy(from_logits)(y_true, y_pred)


_BY_NAME = {"sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
            "categorical_crossentropy": CategoricalCrossentropy}


def get(loss) -> Loss:
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        try:
            return _BY_NAME[loss.lower()]()
        except KeyError:
            raise InvalidValue(f"loss must be one of {sorted(_BY_NAME)} or a Loss object, "
                             f"got {loss!r}") from None
    raise InvalidType(f"loss must be a string or a poolkit.keras.losses.Loss, got {loss!r}")
