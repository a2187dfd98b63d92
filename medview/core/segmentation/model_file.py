"""A fitted classifier as plain arrays and JSON: a model format that cannot run code.

A pickle (and any format that names classes or functions to call) runs whatever the file
names when it is loaded, and an allow-list of module names is no sandbox: dotted global names
reach any object reachable from an allowed module. So medview stores only what prediction
needs, as numbers: the estimator's parameters as JSON and its learned arrays as an NPZ
(uncompressed, read with ``allow_pickle=False``), and rebuilds the scikit-learn estimator from
them with classes named here, never in the file.

Two estimators are supported, the two the pixel classifier predicts with its fast paths:

- ``random_forest``: a ``RandomForestClassifier``; every tree's node table (children, feature,
  threshold, …) and leaf values, concatenated, with each tree's first node in ``tree_start``.
  The trees are checked before scikit-learn's Cython code walks them: children point forward
  inside their own tree, features exist, values are finite — so a crafted file cannot make
  ``apply`` read outside the arrays or loop.
- ``mlp``: ``make_pipeline(StandardScaler(), MLPClassifier(...))``: the scaler's mean/scale/var
  and the network's weights and biases, whose shapes must chain.

Everything else (other estimators, object arrays, compressed members, arrays that do not fit
together) is refused with :class:`ModelFormatError`.
"""

from __future__ import annotations

import io
import itertools
import os
import zipfile
from typing import Any

import numpy as np

__all__ = ["SAFE_KINDS", "ModelFormatError", "estimator_from_npz", "estimator_to_npz"]

#: the estimator kinds that have a safe file format
SAFE_KINDS = ("random_forest", "mlp")
_NODE_FIELDS = ("left_child", "right_child", "feature", "threshold", "impurity",
                "n_node_samples", "weighted_n_node_samples", "missing_go_to_left")
_LEAF = -1  # sklearn.tree._tree.TREE_LEAF
_JSON_SCALARS = (str, int, float, bool, type(None))


class ModelFormatError(ValueError):
    """Model data that is not a safe medview model or does not hold together."""


# -- parameters ------------------------------------------------------------------------------
def _params_to_json(est) -> dict:
    out = {}
    for k, v in est.get_params(deep=False).items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, np.generic):
            v = v.item()
        plain_list = isinstance(v, list) and all(isinstance(x, _JSON_SCALARS) for x in v)
        if plain_list or isinstance(v, _JSON_SCALARS):
            out[k] = v
        # other values (callables, estimators) are training options prediction never reads
    return out


def _make(cls, params: Any, *, tuples: tuple[str, ...] = ()):
    """``cls(**params)`` for the JSON parameters ``cls`` knows; anything odd is refused."""
    if not isinstance(params, dict):
        raise ModelFormatError(f"model: parameters of {cls.__name__} must be an object")
    known = cls().get_params(deep=False)
    clean = {}
    for k, v in params.items():
        if k not in known:
            raise ModelFormatError(f"model: {cls.__name__} has no parameter {k!r}")
        if isinstance(v, list) and all(isinstance(x, _JSON_SCALARS) for x in v):
            v = tuple(v) if k in tuples else v
        elif not isinstance(v, _JSON_SCALARS):
            raise ModelFormatError(f"model: parameter {k!r} of {cls.__name__} is not a "
                                   "plain value")
        clean[k] = v
    return cls(**clean)


# -- NPZ -------------------------------------------------------------------------------------
def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # stored, not compressed: the file holds every byte it decodes to
    return buf.getvalue()


def _read_npz(data: bytes) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            total = 0
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:
                    raise ModelFormatError(f"model: array {info.filename!r} is compressed; "
                                           "medview writes stored arrays only")
                total += info.file_size
            if total > len(data):
                raise ModelFormatError("model: arrays declare more bytes than the file holds")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ModelFormatError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise ModelFormatError(f"model: the array part is damaged ({exc})") from None
    for name, a in arrays.items():
        if a.dtype.hasobject or a.dtype.kind not in "biuf":
            raise ModelFormatError(f"model: array {name!r} has dtype {a.dtype}; only numbers "
                                   "are allowed")
    return arrays


def _need(arrays: dict, name: str, *, ndim: int, kind: str = "f") -> np.ndarray:
    if name not in arrays:
        raise ModelFormatError(f"model: array {name!r} is missing")
    a = arrays[name]
    if a.ndim != ndim or a.dtype.kind not in kind:
        raise ModelFormatError(f"model: array {name!r} has shape {a.shape} dtype {a.dtype}; "
                               f"expected {ndim} dimension(s) of kind {kind!r}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ModelFormatError(f"model: array {name!r} holds NaN or infinite values")
    return a


# -- random forest ---------------------------------------------------------------------------
def _forest_to_npz(forest) -> tuple[dict, dict[str, np.ndarray]]:
    trees = [e.tree_ for e in forest.estimators_]
    states = [t.__getstate__() for t in trees]
    counts = [int(s["node_count"]) for s in states]
    arrays = {f"node_{f}": np.concatenate([s["nodes"][f] for s in states])
              for f in _NODE_FIELDS}
    arrays["values"] = np.concatenate([s["values"] for s in states])
    arrays["tree_start"] = np.cumsum([0, *counts]).astype(np.int64)
    arrays["classes"] = np.asarray(forest.classes_)
    head = {"params": _params_to_json(forest), "n_features": int(forest.n_features_in_),
            "max_features": [int(e.max_features_) for e in forest.estimators_]}
    return head, arrays


def _check_tree(left, right, feature, missing, n_features: int, where: str) -> int:
    """Raise unless the node table is a tree apply() can walk safely; return its depth."""
    n = len(left)
    idx = np.arange(n)
    leaf = left == _LEAF
    if not ((right == _LEAF) == leaf).all():
        raise ModelFormatError(f"model: {where}: a node has one child")
    inner = ~leaf
    if not ((left[inner] > idx[inner]) & (left[inner] < n) & (right[inner] > idx[inner])
            & (right[inner] < n)).all():
        raise ModelFormatError(f"model: {where}: a child index points outside its tree or "
                               "backwards")
    if not ((feature[inner] >= 0) & (feature[inner] < n_features)).all():
        raise ModelFormatError(f"model: {where}: a split uses a feature outside "
                               f"0..{n_features - 1}")
    if not np.isin(missing, (0, 1)).all():
        raise ModelFormatError(f"model: {where}: bad missing_go_to_left flags")
    # children come after their parent, so the walk ends; level by level from the root
    depth, level = 0, np.zeros(1, np.int64)
    while True:
        level = level[inner[level]]
        if not level.size:
            return depth
        level = np.unique(np.concatenate([left[level], right[level]]))
        depth += 1


def _forest_from_npz(head: dict, arrays: dict):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier
    from sklearn.tree._tree import NODE_DTYPE, Tree

    forest = _make(RandomForestClassifier, head.get("params"))
    if forest.n_jobs not in (None, -1):  # scikit-learn's predict starts that many threads
        forest.n_jobs = max(1, min(int(forest.n_jobs), os.cpu_count() or 1))
    n_features = head.get("n_features")
    if not isinstance(n_features, int) or not 0 < n_features < 1 << 20:
        raise ModelFormatError(f"model: n_features {n_features!r} is not a positive integer")
    classes = _need(arrays, "classes", ndim=1, kind="biuf")
    k = len(classes)
    if k < 2 or len(np.unique(classes)) != k:
        raise ModelFormatError("model: need at least two distinct classes")
    start = _need(arrays, "tree_start", ndim=1, kind="i")
    fields = {f: _need(arrays, f"node_{f}", ndim=1, kind="biuf") for f in _NODE_FIELDS}
    values = _need(arrays, "values", ndim=3)
    total = len(values)
    if (len(start) < 2 or start[0] != 0 or start[-1] != total or (np.diff(start) < 1).any()
            or any(len(a) != total for a in fields.values())
            or values.shape[1:] != (1, k) or (values < 0).any()):
        raise ModelFormatError("model: the trees' arrays do not fit together")
    n_trees = len(start) - 1
    max_feats = head.get("max_features")
    if not (isinstance(max_feats, list) and len(max_feats) == n_trees
            and all(isinstance(m, int) and 0 < m <= n_features for m in max_feats)):
        raise ModelFormatError("model: max_features must list one count per tree")
    nodes_all = np.zeros(total, NODE_DTYPE)
    for f in _NODE_FIELDS:
        nodes_all[f] = fields[f]
    values = values.astype(np.float64)
    tree_params = {p: getattr(forest, p) for p in forest.estimator_params}
    estimators = []
    for t in range(n_trees):
        lo, hi = int(start[t]), int(start[t + 1])
        nodes = np.ascontiguousarray(nodes_all[lo:hi])
        depth = _check_tree(nodes["left_child"], nodes["right_child"], nodes["feature"],
                            nodes["missing_go_to_left"], n_features, f"tree {t}")
        tree = Tree(n_features, np.array([k], np.intp), 1)
        tree.__setstate__({"max_depth": depth, "node_count": hi - lo, "nodes": nodes,
                           "values": np.ascontiguousarray(values[lo:hi])})
        est = DecisionTreeClassifier(**tree_params)
        est.tree_, est.n_outputs_, est.n_features_in_ = tree, 1, n_features
        est.classes_, est.n_classes_ = np.arange(k, dtype=np.float64), np.int64(k)
        est.max_features_ = max_feats[t]
        estimators.append(est)
    forest.estimators_, forest.estimator_ = estimators, DecisionTreeClassifier()
    forest.classes_, forest.n_classes_, forest.n_outputs_ = classes, k, 1
    forest.n_features_in_ = n_features
    forest.n_estimators = n_trees
    return forest


# -- MLP -------------------------------------------------------------------------------------
def _mlp_to_npz(pipeline) -> tuple[dict, dict[str, np.ndarray]]:
    scaler, mlp = pipeline[0], pipeline[-1]
    arrays = {"scaler_mean": scaler.mean_, "scaler_scale": scaler.scale_,
              "scaler_var": scaler.var_, "classes": np.asarray(mlp.classes_)}
    for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_, strict=True)):
        arrays[f"coef_{i}"], arrays[f"intercept_{i}"] = w, b
    head = {"scaler_params": _params_to_json(scaler), "params": _params_to_json(mlp),
            "layers": len(mlp.coefs_), "n_iter": int(mlp.n_iter_),
            "n_samples_seen": int(scaler.n_samples_seen_)}
    return head, arrays


def _mlp_from_npz(head: dict, arrays: dict):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import LabelBinarizer, StandardScaler

    scaler = _make(StandardScaler, head.get("scaler_params"))
    mlp = _make(MLPClassifier, head.get("params"), tuples=("hidden_layer_sizes",))
    if mlp.activation not in ("identity", "logistic", "tanh", "relu"):
        raise ModelFormatError(f"model: unknown activation {mlp.activation!r}")
    layers = head.get("layers")
    if not isinstance(layers, int) or not 1 <= layers <= 64:
        raise ModelFormatError(f"model: layers {layers!r} is not a small positive integer")
    classes = _need(arrays, "classes", ndim=1, kind="biuf")
    k = len(classes)
    if k < 2 or len(np.unique(classes)) != k:
        raise ModelFormatError("model: need at least two distinct classes")
    mean, scale, var = (_need(arrays, f"scaler_{n}", ndim=1) for n in ("mean", "scale", "var"))
    coefs = [_need(arrays, f"coef_{i}", ndim=2) for i in range(layers)]
    biases = [_need(arrays, f"intercept_{i}", ndim=1) for i in range(layers)]
    n_in = coefs[0].shape[0]
    n_out = 1 if k == 2 else k
    shapes_ok = (len(mean) == len(scale) == len(var) == n_in and (scale > 0).all()
                 and all(w.shape[1] == len(b) for w, b in zip(coefs, biases, strict=True))
                 and all(a.shape[1] == b.shape[0] for a, b in itertools.pairwise(coefs))
                 and coefs[-1].shape[1] == n_out)
    if not shapes_ok:
        raise ModelFormatError("model: the network's weights do not fit together")
    scaler.mean_, scaler.scale_, scaler.var_ = mean, scale, var
    scaler.n_features_in_ = n_in
    scaler.n_samples_seen_ = int(head.get("n_samples_seen", 0))
    mlp.coefs_, mlp.intercepts_ = coefs, biases
    mlp.classes_, mlp.n_outputs_, mlp.n_layers_ = classes, n_out, layers + 1
    mlp.n_features_in_, mlp.n_iter_ = n_in, int(head.get("n_iter", 0))
    mlp.out_activation_ = "logistic" if k == 2 else "softmax"
    mlp._label_binarizer = LabelBinarizer().fit(classes)
    return make_pipeline(scaler, mlp)


# -- entry points ----------------------------------------------------------------------------
def estimator_to_npz(kind: str, estimator) -> tuple[dict, bytes]:
    """The JSON header part and NPZ bytes of a fitted ``estimator`` of ``kind``.

    Raises
    ------
    ModelFormatError
        If ``kind`` has no safe format (see :data:`SAFE_KINDS`).
    """
    if kind == "random_forest":
        head, arrays = _forest_to_npz(estimator)
    elif kind == "mlp":
        head, arrays = _mlp_to_npz(estimator)
    else:
        raise ModelFormatError(f"model: a {kind} classifier cannot be saved: only "
                               f"{' and '.join(SAFE_KINDS)} models have a file format that "
                               "cannot run code; train one of those to save or send it")
    return head, _npz_bytes(arrays)


def estimator_from_npz(kind: str, head: dict, data: bytes):
    """Rebuild the fitted estimator of ``kind`` from :func:`estimator_to_npz`'s output.

    Raises
    ------
    ModelFormatError
        If ``kind`` is unknown or the arrays and parameters are not a consistent model.
    """
    if kind not in SAFE_KINDS:
        raise ModelFormatError(f"model: kind {kind!r} is not one of {', '.join(SAFE_KINDS)}")
    if not isinstance(head, dict):
        raise ModelFormatError("model: the estimator header must be an object")
    arrays = _read_npz(data)
    try:
        return (_forest_from_npz if kind == "random_forest" else _mlp_from_npz)(head, arrays)
    except (TypeError, IndexError, KeyError) as exc:  # a parameter of the wrong type
        raise ModelFormatError(f"model: inconsistent {kind} data ({exc})") from None
