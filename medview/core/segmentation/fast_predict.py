"""Fast prediction paths of the pixel classifier: exact, float32, one slice per thread.

A fitted random forest is evaluated tree by tree with ``apply`` and float32 leaf-probability
tables, an MLP (StandardScaler + one hidden ReLU layer) as a float32 forward pass with the
scaler folded into the first layer. Both give scikit-learn's labels except where two classes
tie to within float32 rounding.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ForestPredictor", "MLPPredictor"]


class ForestPredictor:
    """A fitted RandomForestClassifier as per-tree ``apply`` + float32 leaf-probability tables."""

    def __init__(self, forest):
        self.trees = [e.tree_ for e in forest.estimators_]
        self.tables = []
        for t in self.trees:
            v = t.value[:, 0, :].astype(np.float64)
            norm = v.sum(axis=1, keepdims=True)
            norm[norm == 0] = 1.0
            self.tables.append((v / norm).astype(np.float32))
        self.k = len(forest.classes_)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Class index per row of X, as ``forest.predict``: argmax of the summed probabilities.

        A row is settled early once its leading class is ahead of the runner-up by more than
        the trees still to come could change (each adds at most 1 to a class): exact, and
        most voxels of an image are settled after a little more than half the trees.
        """
        n, total = X.shape[0], len(self.trees)
        acc = np.zeros((n, self.k), np.float32)
        out = np.empty(n, np.intp)
        rows = np.arange(n)
        checks = set(range(total // 2 + 1, total, max(1, total // 8)))
        for t, (tree, table) in enumerate(zip(self.trees, self.tables, strict=True), 1):
            acc += np.take(table, tree.apply(X), axis=0)
            if t in checks and len(rows):
                top = np.partition(acc, self.k - 2, axis=1)[:, -2:] if self.k > 2 else acc
                settled = np.abs(top[:, -1] - top[:, -2]) > (total - t) + 1e-3
                if settled.mean() > 0.05:
                    out[rows[settled]] = acc[settled].argmax(axis=1)
                    keep = ~settled
                    rows, X, acc = rows[keep], X[keep], acc[keep]
        out[rows] = acc.argmax(axis=1)
        return out


class MLPPredictor:
    """StandardScaler + one-hidden-layer ReLU MLP as a float32 forward pass (scaler folded)."""

    def __init__(self, pipeline):
        scaler, mlp = pipeline[0], pipeline[-1]
        mean = scaler.mean_.astype(np.float64)
        scale = scaler.scale_.astype(np.float64)
        w1, w2 = (w.astype(np.float64) for w in mlp.coefs_)
        b1, b2 = (b.astype(np.float64) for b in mlp.intercepts_)
        self.w1 = (w1 / scale[:, None]).astype(np.float32)
        self.b1 = (b1 - (mean / scale) @ w1).astype(np.float32)
        self.w2, self.b2 = w2.astype(np.float32), b2.astype(np.float32)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        h = X @ self.w1
        h += self.b1
        np.maximum(h, 0.0, out=h)
        o = h @ self.w2
        o += self.b2
        if o.shape[1] == 1:  # binary: one logistic output
            return (o[:, 0] > 0).astype(np.intp)
        return o.argmax(axis=1)
