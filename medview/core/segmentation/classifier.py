# Over 400 lines on purpose: train, predict and both steps share PixelClassifier's state.
"""The scribble classifier: train a pixel classifier on a few labelled voxels, segment a volume.

Why one module: training, the fast predictors and the model file of one PixelClassifier.

The user paints scribbles (a :class:`LabelMap`, 0 = unlabelled, one label value per tissue) on a
few slices; every voxel gets a feature vector (:mod:`medview.core.segmentation.pixel_features`); a
scikit-learn classifier learns the scribbled voxels and labels all the others.

Speed (a whole 512×512×300 CT must take ≤ 30 s on 2 cores): features are computed slice by
slice with OpenCV in float32 and predicted at once, one slice per thread (OpenCV and the
trees' Cython ``apply`` release the GIL), so no volume-sized feature stack ever exists. A random
forest is evaluated tree by tree with ``apply`` and a float32 table of leaf probabilities, an
MLP with a float32 forward pass (one BLAS thread per slice thread); both give scikit-learn's
labels except where two classes tie to within float32 rounding (see the tests).
``hist_gradient_boosting`` and ``svm`` use scikit-learn's own ``predict`` per slice; they are
50–100× slower on whole volumes.

Models are saved with :meth:`PixelClassifier.save` as JSON and plain arrays
(:mod:`medview.core.segmentation.model_file`): a model file cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np

from medview.core._shared.checks import check_same_grid, check_scalar
from medview.core._shared.parallel import worker_count
from medview.core.labelmap import LabelMap, Segment
from medview.core.params import File, Range
from medview.core.progress import NO_PROGRESS, Progress
from medview.core.segmentation.fast_predict import ForestPredictor, MLPPredictor
from medview.core.segmentation.model_store import (
    FORMAT,
    MAGIC,
    LegacyModelError,
    ModelFileError,
    checked_bytes,
    is_legacy_model,
    read_legacy,
    split_model,
)
from medview.core.segmentation.pixel_features import FeatureSpec, slice_features, smooth_slab
from medview.core.volume import Volume

__all__ = [
    "ClassifierKind",
    "LegacyModelError",
    "ModelFileError",
    "PixelClassifier",
    "apply_classifier",
    "classify_pixels",
    "convert_legacy_model",
    "is_legacy_model",
    "train_classifier",
]

ClassifierKind = Literal["random_forest", "mlp", "hist_gradient_boosting", "svm"]
_KINDS = ("random_forest", "mlp", "hist_gradient_boosting", "svm")
_CHUNK_3D = 32  # slices per 3D chunk: the halo (4σ) is recomputed per chunk


# -- training -------------------------------------------------------------------------------
def _check_inputs(volume: Volume, scribbles: Volume) -> tuple[np.ndarray, ...]:
    check_scalar(volume, "the scribble classifier")
    if not isinstance(scribbles, Volume) or scribbles.array.dtype.kind not in "iub":
        raise ValueError("scribbles: expected a LabelMap (integer labels, 0 = unlabelled)")
    check_same_grid(volume, scribbles, name="scribbles",
                    fix="resample the scribbles onto the image")
    flat = scribbles.array.reshape(-1)
    where = np.flatnonzero(flat)  # scribbles are sparse: never sort the whole volume
    values = flat[where]
    labels = np.unique(values)
    if (labels < 0).any():
        raise ValueError(f"scribbles: labels must be >= 0, found {labels[labels < 0].tolist()}")
    if len(labels) < 2:
        found = f"only label {labels[0]}" if len(labels) else "no labels"
        raise ValueError(f"scribbles: need scribbles of at least two labels (tissues) to "
                         f"learn from, found {found}; paint another tissue")
    return labels, where, values


def _pick_samples(where: np.ndarray, values: np.ndarray, labels: np.ndarray, per_class: int,
                  seed: int) -> np.ndarray:
    """Flat indices of the training voxels: all, or ``per_class`` drawn per label (seeded)."""
    rng = np.random.default_rng(seed)
    picked = []
    for lab in labels:
        idx = where[values == lab]
        if len(idx) > per_class:
            idx = np.sort(rng.choice(idx, per_class, replace=False))
        picked.append(idx)
    return np.sort(np.concatenate(picked))


def _make_estimator(kind: str, *, n_trees: int, max_depth: int, hidden_units: int, seed: int):
    depth = None if max_depth <= 0 else int(max_depth)
    if kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=n_trees, max_depth=depth,
                                      n_jobs=worker_count(), random_state=seed)
    if kind == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=n_trees, max_depth=depth,
                                              early_stopping=False, random_state=seed)
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "mlp":
        from sklearn.neural_network import MLPClassifier

        return make_pipeline(StandardScaler(), MLPClassifier(
            (hidden_units,), activation="relu", max_iter=400, random_state=seed))
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(kernel="rbf", random_state=seed))


def train_classifier(volume: Volume, scribbles: Volume, *,
                     classifier: ClassifierKind = "random_forest",
                     sigmas_mm: Sequence[float] = (1.0, 2.0, 4.0),
                     mode: Literal["2d", "3d"] = "2d",
                     lbp: bool = False, gabor: bool = False,
                     n_trees: int = 32, max_depth: int = 12, hidden_units: int = 32,
                     max_samples_per_class: int = 20000, seed: int = 0,
                     progress: Progress = NO_PROGRESS) -> PixelClassifier:
    """Train a pixel classifier on the scribbled voxels of ``volume``.

    Parameters
    ----------
    volume : Volume
        Scalar image, shape (nz, ny, nx).
    scribbles : LabelMap
        Same grid as ``volume``; 0 = unlabelled, every other value is a class. At least two
        labels.
    classifier : {"random_forest", "mlp", "hist_gradient_boosting", "svm"}
        The scikit-learn model: ``RandomForestClassifier``, ``MLPClassifier`` (one hidden
        layer, standardised features), ``HistGradientBoostingClassifier`` or RBF ``SVC``
        (standardised features). The last two predict 50–100× slower than the first two
        (about 4 s per 512² slice here): use them on slices or small crops.
    sigmas_mm : sequence of float
        Feature scales in mm (see :class:`~medview.core.segmentation.pixel_features.FeatureSpec`).
    mode : {"2d", "3d"}
        Features per slice or across slices.
    lbp, gabor : bool
        Add local binary pattern / Gabor features.
    n_trees : int
        Trees of the forest, boosting iterations of ``hist_gradient_boosting``.
    max_depth : int
        Tree depth limit; 0 = unlimited.
    hidden_units : int
        Width of the MLP's hidden layer.
    max_samples_per_class : int
        At most this many scribbled voxels per label are used (drawn with ``seed``).
    seed : int
        Seeds the sample draw and the model: equal inputs give bit-identical models.

    Returns
    -------
    PixelClassifier

    Raises
    ------
    ValueError
        On a grid mismatch, fewer than two scribble labels or a bad option (names it).
    medview.core.progress.Cancelled
        When ``progress`` is cancelled.
    """
    labels, where, values = _check_inputs(volume, scribbles)
    if classifier not in _KINDS:
        raise ValueError(f"classifier: {classifier!r} is not one of {', '.join(_KINDS)}")
    for name, value, low in (("n_trees", n_trees, 1), ("hidden_units", hidden_units, 1),
                             ("max_samples_per_class", max_samples_per_class, 1),
                             ("max_depth", max_depth, 0)):
        if int(value) != value or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    spec = FeatureSpec(sigmas_mm=tuple(sigmas_mm), mode=mode, lbp=lbp, gabor=gabor)
    idx = _pick_samples(where, values, labels, int(max_samples_per_class), seed)
    plane = volume.shape[1] * volume.shape[2]
    z_of = idx // plane
    slices = np.unique(z_of)
    X = np.empty((len(idx), spec.count), np.float32)
    starts = np.searchsorted(z_of, slices)
    stops = np.searchsorted(z_of, slices, side="right")
    src = volume.array
    sub = progress.sub(0.0, 0.5)

    def one(m: int) -> None:
        k = int(slices[m])
        smoothed, z0 = _smoothed_around(src, k, k + 1, volume.spacing, spec)
        f = slice_features(src, k, volume.spacing, spec, smoothed=smoothed, z0=z0)
        X[starts[m]:stops[m]] = f[:, idx[starts[m]:stops[m]] - k * plane].T

    _run_threads(one, len(slices), sub, "classifier: features of the scribbles")
    y = scribbles.array.reshape(-1)[idx]
    progress.check()
    progress.update(0.5, f"classifier: training ({len(idx)} voxels)")
    est = _make_estimator(classifier, n_trees=int(n_trees), max_depth=int(max_depth),
                          hidden_units=int(hidden_units), seed=int(seed))
    with warnings.catch_warnings():
        # an MLP that has not fully converged on scribbles still separates them; the
        # training accuracy below tells the user what matters
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)
        with _single_threaded_library("hist_gradient_boosting" if classifier ==
                                      "hist_gradient_boosting" else ""):
            est.fit(X, y)
    accuracy = float((est.predict(X) == y).mean())
    segs = tuple(s for s in getattr(scribbles, "segments", ()) if s.number in set(labels))
    progress.update(1.0, "classifier: trained")
    return PixelClassifier(est, spec, tuple(int(v) for v in labels), segs, classifier,
                           int(seed), len(idx), accuracy)


# -- prediction -----------------------------------------------------------------------------
def _run_threads(func, n: int, progress: Progress, message: str) -> None:
    """``func(i)`` for i in range(n) on all cores; cancel checked per item."""

    def checked(i: int) -> None:
        progress.check()
        func(i)

    done = 0
    threads = min(worker_count(), max(1, n))
    if threads == 1:
        for i in range(n):
            checked(i)
            done += 1
            progress.update(done / n, message)
        return
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(checked, i) for i in range(n)]
        try:
            for fut in futures:
                fut.result()
                done += 1
                progress.update(done / n, message)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


@contextmanager
def _single_threaded_library(kind: str):
    """Run the MLP's BLAS and HGB's OpenMP loops on one thread while this is active.

    Prediction runs one slice per thread already, so library threads on top only
    oversubscribe; HGB's OpenMP loops are even 30× slower to fit on a busy 2-core machine than
    on one thread (measured: 3.0 s vs 0.085 s for 450 samples). The limit is process-wide
    while it lasts (threadpoolctl).
    """
    api = {"mlp": "blas", "hist_gradient_boosting": "openmp"}.get(kind)
    if api is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api=api):
        yield


def _smoothed_around(src: np.ndarray, lo: int, hi: int, spacing, spec: FeatureSpec):
    if spec.mode != "3d" or not spec.halo(spacing):
        return None, 0
    smoothed, z0 = {}, 0
    for s in spec.sigmas_mm:
        smoothed[s], z0 = smooth_slab(src, lo, hi, spacing, s)
    return smoothed, z0


@dataclass(frozen=True, eq=False)
class PixelClassifier:
    """A trained pixel classifier: the scikit-learn model, its features and its labels.

    Attributes
    ----------
    estimator : scikit-learn classifier
        Fitted on feature vectors (rows) whose columns are ``features.names``.
    features : FeatureSpec
    labels : tuple of int
        The label value of each class (``estimator.classes_``).
    segments : tuple of Segment
        Names and colours of the labels, from the scribbles.
    kind : str
        ``random_forest``, ``mlp``, ``hist_gradient_boosting`` or ``svm``.
    seed : int
    training_samples : int
        Scribbled voxels the model learnt from.
    training_accuracy : float
        Fraction of those it labels as scribbled.
    """

    estimator: Any
    features: FeatureSpec
    labels: tuple[int, ...]
    segments: tuple[Segment, ...] = ()
    kind: str = "random_forest"
    seed: int = 0
    training_samples: int = 0
    training_accuracy: float = float("nan")
    _fast: Any = field(default=None, repr=False)

    def _predictor(self):
        if self._fast is None:
            if self.kind == "random_forest":
                fast = ForestPredictor(self.estimator)
            elif self.kind == "mlp":
                fast = MLPPredictor(self.estimator)
            else:
                est = self.estimator
                classes = list(est.classes_)

                def fast(X, est=est, classes=classes):
                    return np.searchsorted(classes, est.predict(X))
            object.__setattr__(self, "_fast", fast)
        return self._fast

    def predict(self, volume: Volume, progress: Progress = NO_PROGRESS) -> LabelMap:
        """Label every voxel of ``volume`` (same kind of image the model was trained on).

        Parameters
        ----------
        volume : Volume
            Scalar image, shape (nz, ny, nx), any grid (feature scales are in mm).
        progress : Progress
            Updated per slice; cancellation is checked before every slice.

        Returns
        -------
        LabelMap
            uint8 (uint16 for label values above 255) on ``volume``'s grid.

        Raises
        ------
        ValueError
            If ``volume`` is not a scalar Volume.
        medview.core.progress.Cancelled
        """
        check_scalar(volume, "the scribble classifier")
        nz, ny, nx = volume.shape
        lut = np.asarray(self.labels, np.uint16 if max(self.labels) > 255 else np.uint8)
        out = np.empty((nz, ny, nx), lut.dtype)
        predict = self._predictor()
        spec, src, spacing = self.features, volume.array, volume.spacing
        # one thread per core walks its own slices (trees, BLAS and HGB's loops release the
        # GIL); the SVM's libsvm does not, so it runs slice after slice
        parallel = self.kind != "svm"
        chunk = _CHUNK_3D if spec.mode == "3d" and spec.halo(spacing) else nz
        done = 0
        for lo in range(0, nz, chunk):
            hi = min(nz, lo + chunk)
            progress.check()
            smoothed, z0 = _smoothed_around(src, lo, hi, spacing, spec)

            def one(m: int, lo=lo, smoothed=smoothed, z0=z0) -> None:
                k = lo + m
                f = slice_features(src, k, spacing, spec, smoothed=smoothed, z0=z0)
                out[k] = lut[predict(f.T)].reshape(ny, nx)

            sub = progress.sub(done / nz, hi / nz)
            if parallel:
                with _single_threaded_library(self.kind):
                    _run_threads(one, hi - lo, sub, "classifier: labelling slices")
            else:
                for m in range(hi - lo):
                    sub.check()
                    one(m)
                    sub.update((m + 1) / (hi - lo), "classifier: labelling slices")
            done = hi
        segs = self.segments or ()
        return LabelMap.like(volume, out, segs)

    # -- storage ---------------------------------------------------------------------------
    @property
    def saveable(self) -> bool:
        """True when the model has a safe file format (random forest and MLP)."""
        from medview.core.segmentation.model_file import SAFE_KINDS

        return self.kind in SAFE_KINDS

    def _header(self) -> dict:
        import sklearn

        return {"format": FORMAT, "kind": self.kind, "labels": list(self.labels),
                "features": self.features.to_dict(), "seed": self.seed,
                "training_samples": self.training_samples,
                "training_accuracy": self.training_accuracy,
                "segments": [{"number": s.number, "name": s.name, "color": list(s.color),
                              "category": list(s.category), "type": list(s.type)}
                             for s in self.segments],
                "sklearn": sklearn.__version__}

    def to_bytes(self) -> bytes:
        """The model as bytes: a magic line, a JSON header line, the estimator's arrays (NPZ).

        The header holds the estimator's parameters and the SHA-256 of the arrays; the arrays
        are numbers only (:mod:`medview.core.segmentation.model_file`), so loading the bytes cannot
        run code.

        Raises
        ------
        ModelFileError
            For a kind without a safe format (``hist_gradient_boosting``, ``svm``).
        """
        from medview.core.segmentation.model_file import ModelFormatError, estimator_to_npz

        try:
            est_head, payload = estimator_to_npz(self.kind, self.estimator)
        except ModelFormatError as exc:
            raise ModelFileError(str(exc)) from None
        head = self._header()
        head.update(estimator=est_head, payload_sha256=hashlib.sha256(payload).hexdigest())
        return MAGIC + json.dumps(head).encode() + b"\n" + payload

    @classmethod
    def from_bytes(cls, data: bytes) -> PixelClassifier:
        """The inverse of :meth:`to_bytes`; nothing in ``data`` is ever executed.

        Raises
        ------
        LegacyModelError
            If ``data`` is a format-1 model (a pickle): see :func:`convert_legacy_model`.
        ModelFileError
            If ``data`` is not a medview model, is damaged, or does not hold together.
        """
        from medview.core.segmentation.model_file import ModelFormatError, estimator_from_npz

        head, payload = split_model(data)
        try:
            est = estimator_from_npz(str(head.get("kind")), head.get("estimator"), payload)
            segs = tuple(Segment(int(s["number"]), str(s["name"]), tuple(s["color"]),
                                 tuple(s["category"]), tuple(s["type"]))
                         for s in head.get("segments", []))
            labels = tuple(int(v) for v in head["labels"])
            features = FeatureSpec.from_dict(head["features"])
            if len(labels) != len(est.classes_) or list(labels) != \
                    [int(c) for c in est.classes_]:
                raise ModelFileError("model: the labels do not match the estimator's classes")
            return cls(est, features, labels, segs, str(head["kind"]),
                       int(head.get("seed", 0)), int(head.get("training_samples", 0)),
                       float(head.get("training_accuracy", float("nan"))))
        except ModelFormatError as exc:
            raise ModelFileError(str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise ModelFileError(f"model: damaged header ({type(exc).__name__}: {exc})") \
                from None

    def save(self, path) -> Path:
        """Write the model to ``path`` and its SHA-256 to ``path + ".sha256"``.

        The file holds JSON and plain arrays (no pickle): loading it cannot run code. The
        sidecar catches damaged or swapped files (not an attacker who can write both).

        Returns
        -------
        Path
            The sidecar's path.

        Raises
        ------
        ModelFileError
            For a kind without a safe format (``hist_gradient_boosting``, ``svm``).
        """
        path = Path(path)
        data = self.to_bytes()
        from medview.atomic import write_bytes_atomic, write_text_atomic

        write_bytes_atomic(path, data)
        side = path.with_name(path.name + ".sha256")
        write_text_atomic(side, f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")
        return side

    @classmethod
    def load(cls, path) -> PixelClassifier:
        """Read a model written by :meth:`save`, after checking its SHA-256 sidecar.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        LegacyModelError
            If it is a format-1 model (a pickle); nothing of it was deserialised.
        ModelFileError
            If the sidecar is missing or does not match, or the file is not a model.
        """
        path = Path(path)
        data = checked_bytes(path)
        try:
            return cls.from_bytes(data)
        except LegacyModelError as exc:
            raise LegacyModelError(f"model_path: {path}: {exc}") from None
        except ModelFileError as exc:
            raise ModelFileError(f"model_path: {path}: {exc}") from None


def convert_legacy_model(path, *, trust: bool) -> PixelClassifier:
    """Rewrite a format-1 (pickle) model at ``path`` in the safe format, if you trust it.

    Unpickling runs whatever the file says, so this is only for a model you made yourself or
    got from someone you trust; the GUI asks the user before it calls this, and the server
    never does. The old file is kept beside it as ``<name>.pickle-v1``.

    Parameters
    ----------
    path : path-like
        A format-1 model with its ``.sha256`` sidecar.
    trust : bool
        Must be True: the caller's statement that the user confirmed the file's source.

    Returns
    -------
    PixelClassifier
        The model, now saved in the safe format at ``path``.

    Raises
    ------
    PermissionError
        If ``trust`` is not True.
    ModelFileError
        If the file is not a format-1 model, fails its sidecar, or its kind has no safe
        format.
    """
    if trust is not True:
        raise PermissionError(f"model_path: {path}: converting an old model unpickles it; "
                              "pass trust=True only after the user confirmed its source")
    path = Path(path)
    head, data, est = read_legacy(path)
    segs = tuple(Segment(int(s["number"]), s["name"], tuple(s["color"]), tuple(s["category"]),
                         tuple(s["type"])) for s in head.get("segments", []))
    model = PixelClassifier(est, FeatureSpec.from_dict(head["features"]),
                            tuple(int(v) for v in head["labels"]), segs, str(head["kind"]),
                            int(head.get("seed", 0)), int(head.get("training_samples", 0)),
                            float(head.get("training_accuracy", float("nan"))))
    model.to_bytes()  # raises for a kind without a safe format, before anything is written
    path.with_name(path.name + ".pickle-v1").write_bytes(data)
    model.save(path)
    return PixelClassifier.load(path)


# -- steps ----------------------------------------------------------------------------------
def classify_pixels(
    volume: Volume, scribbles: LabelMap, *,
    classifier: ClassifierKind = "random_forest",
    smallest_sigma_mm: Annotated[float, Range(0.1, 20.0, step=0.1, unit="mm")] = 1.0,
    scales: Annotated[int, Range(1, 6, step=1)] = 3,
    mode: Literal["2d", "3d"] = "2d",
    lbp: bool = False,
    gabor: bool = False,
    n_trees: Annotated[int, Range(1, 500, step=1)] = 32,
    max_depth: Annotated[int, Range(0, 64, step=1)] = 12,
    hidden_units: Annotated[int, Range(1, 512, step=1)] = 32,
    max_samples_per_class: Annotated[int, Range(10, 1_000_000, step=1000)] = 20000,
    seed: Annotated[int, Range(0, 2**31 - 1, step=1)] = 0,
    progress: Progress = NO_PROGRESS,
) -> dict:
    """Train a pixel classifier on scribbles and label the whole volume.

    Features: intensity plus, at ``scales`` scales doubling from ``smallest_sigma_mm``,
    Gaussian, gradient magnitude and Laplacian of Gaussian (optionally LBP and Gabor).

    Parameters
    ----------
    volume : Volume
        Scalar image, shape (nz, ny, nx).
    scribbles : LabelMap
        Scribbled voxels on the same grid, 0 = unlabelled, at least two labels.
    classifier : str
        random_forest (default), mlp (fastest), hist_gradient_boosting or svm (slow: minutes
        per 100 slices of 512², for single slices and small crops).
    smallest_sigma_mm : float
        Smallest feature scale; the others double it.
    scales : int
        Number of feature scales.
    mode : str
        2d: features per slice; 3d: across slices too (slower).
    lbp : bool
        Add a local binary pattern feature.
    gabor : bool
        Add Gabor magnitudes (4 orientations per scale).
    n_trees : int
        Trees of the forest (boosting iterations for hist_gradient_boosting).
    max_depth : int
        Depth limit of the trees, 0 = unlimited.
    hidden_units : int
        Hidden layer width of the MLP.
    max_samples_per_class : int
        Scribbled voxels used per label at most (seeded draw).
    seed : int
        Random seed: the same inputs give the same labels.

    Returns
    -------
    dict
        ``{"labels": LabelMap, "model": PixelClassifier}``.
    """
    sigmas = tuple(smallest_sigma_mm * 2.0**i for i in range(int(scales)))
    if smallest_sigma_mm <= 0 or scales < 1:
        raise ValueError("smallest_sigma_mm, scales: need a positive scale and >= 1 scale")
    model = train_classifier(volume, scribbles, classifier=classifier, sigmas_mm=sigmas,
                             mode=mode, lbp=lbp, gabor=gabor, n_trees=n_trees,
                             max_depth=max_depth, hidden_units=hidden_units,
                             max_samples_per_class=max_samples_per_class, seed=seed,
                             progress=progress.sub(0.0, 0.1))
    labels = model.predict(volume, progress.sub(0.1, 1.0))
    return {"labels": labels, "model": model}


def apply_classifier(volume: Volume, *, model_path: Annotated[str, File((".model",))],
                     progress: Progress = NO_PROGRESS) -> LabelMap:
    """Label a volume with a classifier saved by the train step (``.model`` file).

    Parameters
    ----------
    volume : Volume
        Scalar image, shape (nz, ny, nx).
    model_path : str
        Path of a model saved with its ``.sha256`` sidecar.

    Returns
    -------
    LabelMap
        On ``volume``'s grid.

    Raises
    ------
    ModelFileError
        If the file is not a model or fails its SHA-256 check.
    """
    if not model_path:
        raise ValueError("model_path: give the path of a saved .model file")
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model_path: no file {path}")
    return PixelClassifier.load(path).predict(volume, progress)
