"""Model files that describe themselves: :func:`save` and :func:`load`.

A model file is the ``.npz`` of :func:`backprop.io.save_params` (arrays
``w0, b0, w1, b1, ...``, plus ``mean`` and ``scale`` when the inputs are
standardised) with one more member, ``model.json``, a JSON object holding
everything needed to use the weights::

    {"format": "backprop-model", "format_version": 1, "library_version": "0.3.0",
     "kind": "network",                     # or "MLPClassifier", "MLPRegressor"
     "network": {"sizes": [64, 128, 10], "activations": ["relu"],
                 "output": "softmax", "loss": "cross_entropy",
                 "layers": [{"type": "dense", "in": 64, "out": 128, "activation": "relu"},
                            {"type": "dense", "in": 128, "out": 10, "activation": "softmax"}]},
     "dtype": "float32",
     "classes": {"values": ["0", "1", ...], "dtype": "<U1"},      # or null
     "input_scaling": {"rule": "(X - mean) / scale"},             # or null
     "training": {"optimizer": "adam", "lr": 0.001, ...},
     "estimator": {"class": "MLPClassifier", "params": {...},     # estimators only
                   "out_activation": "softmax", "y_type": "multiclass",
                   "feature_names_in": null, "not_saved": []}}

No pickle anywhere: labels are stored as JSON values with their NumPy dtype
(numbers, strings and booleans; other label types are refused when saving).
Loading reads the description first (at most 1 MiB), checks it, then checks
every array's header against it before reading any data, so a file cannot
make the loader allocate more than the model it describes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backprop import io as _io
from backprop.nets import Layer, Net, make_net

__all__ = ["FORMAT", "FORMAT_VERSION", "Model", "load", "load_model", "save"]

FORMAT = "backprop-model"
FORMAT_VERSION = 1
_LABEL_KINDS = "biufU"  # bool, integers, floats, unicode strings


@dataclass(frozen=True, eq=False)
class Model:
    """A trained network with everything needed to use it.

    Attributes
    ----------
    net : Net
        The architecture (sizes, hidden activations, output head and loss).
    params : tuple of Layer
        ``w`` (D_in, D_out) and ``b`` (D_out,) per layer, all of ``dtype``.
    classes : ndarray (C,) or None
        The label of each class: column k of :meth:`predict_proba` is
        ``classes[k]``. None for a network without class labels.
    mean, scale : ndarray (D0,) or None
        Input standardisation applied before the network: ``(X - mean) / scale``.
    training : dict
        The training settings the file recorded (JSON values).
    library_version : str
        The backprop version that wrote the file.
    """

    net: Net
    params: tuple[Layer, ...]
    classes: np.ndarray | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    training: dict[str, Any] = field(default_factory=dict)
    library_version: str = ""

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.params[0].w.dtype)

    @property
    def n_features(self) -> int:
        return int(self.net.sizes[0])

    def __repr__(self) -> str:
        classes = "" if self.classes is None else f", {len(self.classes)} classes"
        scaled = ", standardised inputs" if self.mean is not None else ""
        return f"Model({self.net}{classes}{scaled}, {self.dtype})"

    def transform(self, X: Any) -> np.ndarray:
        """X (N, D0) checked, converted to the model's dtype and standardised."""
        from backprop._validate import check_features

        X = check_features("X", X, self.n_features, self.dtype)
        if self.mean is not None and self.scale is not None:
            X = ((X - self.mean) / self.scale).astype(self.dtype)
        return X

    def output(self, X: Any) -> np.ndarray:
        """The head's output for X (N, D0): probabilities, or values for identity (N, DL)."""
        from backprop.nets import predict

        return predict(self.params, self.transform(X), self.net)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, C); a single sigmoid output gives (1 - p, p).

        Raises ``ValueError`` for an identity (regression) head, which has none.
        """
        if self.net.head.outputs == "values":
            raise ValueError(
                f"this model's output is identity (mse): it predicts values, not "
                f"probabilities; use predict ({self.net})"
            )
        p = self.output(X)
        if self.net.head.outputs == "independent" and p.shape[1] == 1:
            return np.hstack([1 - p, p])
        return p

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for X (N, D0).

        Class labels (N,) where the model has classes; otherwise class indices
        (N,) for softmax, 0/1 (N, DL) for sigmoid, values (N, DL) for identity.
        """
        p = self.output(X)
        if self.net.head.outputs == "values":
            return p
        if self.net.head.outputs == "independent" and (self.classes is None or p.shape[1] > 1):
            return (p > 0.5).astype(np.int64)
        index = np.argmax(p, axis=1) if p.shape[1] > 1 else (p[:, 0] > 0.5).astype(np.int64)
        return index if self.classes is None else self.classes[index]

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Accuracy and mean loss on X (N, D0) and labels y (N,).

        ``y`` holds class labels (values of ``classes``; class indices when
        the model has none). Returns ``{"accuracy": ..., "loss": ...}``; the
        loss is the head's (cross-entropy, BCE), without any penalty. For an
        identity (regression) head ``y`` holds target values, (N,) or (N, DL),
        and only ``{"loss": ...}`` (the mean squared error) is returned.
        """
        from backprop.kernels import get_backend
        from backprop.nets import forward

        X = self.transform(X)
        n_out = self.net.sizes[-1]
        K = get_backend("numpy")
        z, _ = forward(K, self.params, X, self.net)
        loss_forward = K.pair(self.net.head.kernel)[0]  # the head's fused loss on logits
        if self.net.head.outputs == "values":
            from backprop._validate import check_array

            Y = check_array("y", y, self.dtype)
            Y = Y.reshape(-1, 1) if Y.ndim == 1 and n_out == 1 else Y
            if Y.shape != z.shape:
                raise ValueError(
                    f"y must have shape {z.shape} (one target row per row of X), got {Y.shape}"
                )
            return {"loss": float(loss_forward(z, Y, None)[0])}
        if self.net.head.outputs == "independent" and n_out > 1:
            raise ValueError(
                f"evaluate takes one label per row; this model has {n_out} independent sigmoid "
                "outputs (multi-label): use output() and compare per output"
            )
        index = self._label_indices(y, X.shape[0])
        Y = (
            np.eye(n_out, dtype=self.dtype)[index]
            if self.net.head.outputs == "probabilities"
            else index.reshape(-1, 1).astype(self.dtype)
        )
        loss, _ = loss_forward(z, Y, None)
        hit = np.argmax(z, axis=1) == index if n_out > 1 else (z[:, 0] > 0) == (index == 1)
        return {"accuracy": float(np.mean(hit)), "loss": float(loss)}

    def _label_indices(self, y: Any, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y must hold one label per row of X ({n},), got shape {y.shape}")
        if self.classes is None:
            n_classes = max(2, self.net.sizes[-1])
            if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= n_classes)):
                raise ValueError(
                    f"y must hold class indices in [0, {n_classes}) (this model has no class "
                    f"labels), got values like {y[:3].tolist()}"
                )
            return y.astype(np.int64)
        order = np.argsort(self.classes)
        pos = np.searchsorted(self.classes[order], y)
        pos = np.clip(pos, 0, len(self.classes) - 1)
        found = self.classes[order][pos] == y
        if not np.all(found):
            unknown = np.unique(y[~found])[:5].tolist()
            raise ValueError(
                f"y holds labels the model does not know: {unknown}; its classes are "
                f"{self.classes.tolist()}"
            )
        return order[pos]


# -- saving -----------------------------------------------------------------------


def save(
    obj: Any,
    path: str | os.PathLike[str],
    *,
    net: Net | None = None,
    classes: Any = None,
    mean: Any = None,
    scale: Any = None,
    training: Mapping[str, Any] | None = None,
) -> Path:
    """Save a trained model, with its description, to ``path`` (a ``.npz``), atomically.

    Parameters
    ----------
    obj : MLPResult, Model, fitted MLPClassifier or MLPRegressor, or sequence of Layer
        What :func:`backprop.train_mlp` returned; a :class:`Model`; a fitted
        estimator (its ``coefs_``, ``intercepts_``, ``classes_``,
        ``out_activation_``, ``feature_names_in_`` and ``get_params()`` are
        saved; a Poisson regressor, whose exponential output is no head of
        this library, is refused); or bare parameters, with ``net``.
    path : str or os.PathLike
        Target file ending in ``.npz``; its directory must exist. A symbolic
        link is followed; an existing file's permissions are kept.
    net : Net, optional
        The architecture; required with bare parameters, otherwise it must
        agree with ``obj``'s.
    classes : array-like (C,), optional
        The label of each output class (numbers, strings or booleans, no NaN).
    mean, scale : array-like (D0,), optional
        Input standardisation, both or neither; ``scale`` > 0.
    training : mapping, optional
        Training settings to record (JSON values, NumPy scalars accepted);
        merged over what ``obj`` records itself.

    Returns
    -------
    Path

    Raises
    ------
    ValueError, TypeError
        Naming the argument: parameters that do not match ``net``, classes
        of the wrong count or kind, scaling of the wrong shape, settings
        that are not JSON values. Nothing is written.
    OSError
        As :func:`backprop.io.save_params`.
    """
    path = _io._check_npz_path(path)
    if training is not None and not isinstance(training, Mapping):
        raise TypeError(f"training must be a mapping of settings, got {type(training).__name__}")
    kind, estimator = "network", None
    recorded: dict[str, Any] = {}
    if isinstance(obj, Model):
        params, own_net = obj.params, obj.net
        classes = obj.classes if classes is None else classes
        mean = obj.mean if mean is None else mean
        scale = obj.scale if scale is None else scale
        recorded = dict(obj.training)
    elif hasattr(obj, "get_params") and hasattr(obj, "hidden_layer_sizes"):  # an estimator
        kind = type(obj).__name__
        if classes is not None:
            raise ValueError("classes: an estimator's classes are its classes_; do not pass them")
        if mean is not None or scale is not None:
            raise ValueError("mean and scale: an estimator applies no input scaling")
        params, own_net, classes, estimator = _from_estimator(obj)
        recorded = {"n_iter": _json_value("n_iter_", getattr(obj, "n_iter_", None))}
    elif hasattr(obj, "params") and hasattr(obj, "net"):
        params, own_net = obj.params, obj.net
        recorded = _result_settings(obj)
    else:
        params, own_net = obj, None
    arrays = _io._arrays_to_save(params)
    net = _agree(own_net, net, arrays)
    dtype = arrays["w0"].dtype
    if any(a.dtype != dtype for a in arrays.values()):
        raise TypeError(
            "params mix float32 and float64 arrays; a model has one dtype: convert them with "
            ".astype(np.float32) or .astype(np.float64)"
        )
    label_json, _ = _classes_json(classes, net)
    scaling = _scaling(mean, scale, net.sizes[0], dtype)
    if scaling is not None:
        arrays["mean"], arrays["scale"] = scaling
    recorded.update(
        {str(k): _json_value(f"training[{k!r}]", v) for k, v in (training or {}).items()}
    )
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": _version(),
        "kind": kind,
        "network": _net_json(net),
        "dtype": dtype.name,
        "classes": label_json,
        "input_scaling": None if scaling is None else {"rule": "(X - mean) / scale"},
        "training": recorded,
    }
    if estimator is not None:
        metadata["estimator"] = estimator
    return _io._save_npz(path, arrays, metadata)


def _version() -> str:
    import backprop

    return str(getattr(backprop, "__version__", "unknown"))


def _net_json(net: Net) -> dict[str, Any]:
    layers = []
    for i in range(net.n_layers):
        act = net.activations[i] if i < net.n_layers - 1 else net.output
        layers.append(
            {"type": "dense", "in": net.sizes[i], "out": net.sizes[i + 1], "activation": act}
        )
    return {
        "sizes": list(net.sizes),
        "activations": list(net.activations),
        "output": net.output,
        "loss": net.loss,
        "layers": layers,
    }


def _agree(own: Net | None, given: Net | None, arrays: dict[str, np.ndarray]) -> Net:
    """The model's Net: ``own`` or ``given`` (they must agree), checked against the arrays."""
    if own is None and given is None:
        raise TypeError(
            "net is required with bare parameters: save(params, path, net=make_net(..))"
        )
    if own is not None and given is not None and own != given:
        raise ValueError(f"net {given} disagrees with the model's own {own}")
    net = own if own is not None else given
    if not isinstance(net, Net):
        raise TypeError(f"net must be a backprop.Net (from make_net), got {type(net).__name__}")
    shapes = _param_sizes(arrays)
    if shapes != list(net.sizes):
        raise ValueError(
            f"the parameters have layer sizes {shapes}, the net {net} has {list(net.sizes)}"
        )
    return net


def _param_sizes(arrays: Mapping[str, np.ndarray]) -> list[int]:
    n = sum(1 for k in arrays if k.startswith("w"))
    return [int(arrays["w0"].shape[0])] + [int(arrays[f"w{i}"].shape[1]) for i in range(n)]


def _from_estimator(est: Any) -> tuple[tuple[Layer, ...], Net, Any, dict[str, Any]]:
    """A fitted MLPClassifier or MLPRegressor as (params, net, classes, estimator section)."""
    from backprop import sklearn_step

    name = type(est).__name__
    for attr in ("coefs_", "intercepts_", "out_activation_", "n_outputs_"):
        if getattr(est, attr, None) is None:
            raise ValueError(f"the {name} is not fitted ({attr} missing): fit it first")
    params = tuple(
        Layer(np.asarray(w), np.asarray(b))
        for w, b in zip(est.coefs_, est.intercepts_, strict=True)
    )
    got = est.get_params()
    output = sklearn_step.output(est.out_activation_)
    if output.head is None:
        raise ValueError(
            f"this {name}'s output {est.out_activation_!r} (loss={got.get('loss')!r}) is not "
            "an output head of this library, so a model file cannot describe it; the heads "
            f"are those of {', '.join(o for o, d in sklearn_step.OUTPUTS.items() if d.head)}"
        )
    sizes = [int(params[0].w.shape[0])] + [int(p.w.shape[1]) for p in params]
    net = make_net(sizes, sklearn_step.kernel_name(got.get("activation")), output.head)
    binarizer = getattr(est, "_label_binarizer", None)
    y_type = None if binarizer is None else str(binarizer.y_type_)
    classes = None
    if binarizer is not None and y_type != "multilabel-indicator":
        classes = est.classes_
    kept, dropped = {}, []
    for k, v in got.items():
        try:
            kept[k] = _json_value(k, v)
        except TypeError:
            kept[k], dropped = None, [*dropped, k]
    names = getattr(est, "feature_names_in_", None)
    section = {
        "class": name,
        "params": kept,
        "not_saved": dropped,
        "out_activation": str(est.out_activation_),
        "y_type": y_type,
        "feature_names_in": None if names is None else [str(n) for n in names],
    }
    return params, net, classes, section


def _result_settings(r: Any) -> dict[str, Any]:
    """What an MLPResult records about its run, as JSON values."""
    out: dict[str, Any] = {}
    for name in ("backend", "dtype", "devices", "stopped_early", "best_epoch"):
        value = getattr(r, name, None)
        try:
            out[name] = _json_value(name, value)
        except TypeError:
            out[name] = str(value)
    losses = getattr(r, "losses", None)
    if losses is not None and len(losses):
        out["epochs_run"] = len(losses)
        out["final_loss"] = _json_value("final_loss", float(losses[-1]))
    return out


def _json_value(name: str, value: Any) -> Any:
    """``value`` as plain JSON (NumPy scalars and arrays converted); TypeError otherwise."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(name, v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(name, v) for k, v in value.items()}
    raise TypeError(f"{name} must be a JSON value (number, string, bool, list), got {value!r}")


def _classes_json(classes: Any, net: Net) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    if classes is None:
        return None, None
    a = np.asarray(classes)
    if a.dtype.kind == "O" and any(
        v is None or (isinstance(v, (float, np.floating)) and not math.isfinite(v))
        for v in a.ravel().tolist()
    ):
        raise ValueError(f"classes must not hold NaN, infinity or None, got {a.tolist()}")
    if a.dtype.kind == "O":
        try:
            a = np.asarray(a.tolist())
        except (TypeError, ValueError):
            pass
    if a.ndim != 1 or a.dtype.kind not in _LABEL_KINDS:
        raise TypeError(
            f"classes must be a 1-D array of numbers, strings or booleans, got dtype {a.dtype} "
            f"and shape {a.shape}"
        )
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"classes must not hold NaN or infinity, got {a.tolist()}")
    if len(np.unique(a)) != len(a):
        raise ValueError(f"classes must be distinct, got {a.tolist()}")
    outputs = net.head.outputs
    need = net.sizes[-1] if outputs == "probabilities" else (2 if net.sizes[-1] == 1 else None)
    if outputs == "values" or need is None:
        raise ValueError(f"classes need a softmax head or one sigmoid output; the net is {net}")
    if len(a) != need:
        raise ValueError(f"classes has {len(a)} labels, the net {net} has {need} classes")
    return {"values": a.tolist(), "dtype": a.dtype.str}, a


def _scaling(
    mean: Any, scale: Any, width: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray] | None:
    if mean is None and scale is None:
        return None
    if mean is None or scale is None:
        raise ValueError("mean and scale go together: give both or neither")
    from backprop._validate import check_array

    m = check_array("mean", mean, dtype)
    s = check_array("scale", scale, dtype)
    for name, a in (("mean", m), ("scale", s)):
        if a.shape != (width,):
            raise ValueError(f"{name} must have shape ({width},) (one per input), got {a.shape}")
    if not np.all(s > 0):
        raise ValueError("scale must be > 0 for every input")
    return m, s


# -- loading ----------------------------------------------------------------------


def describe_file_net(metadata: Mapping[str, Any], where: str) -> tuple[Net, str]:
    """The network a file's description declares, checked, and its one-line description."""
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{where}: its model.json is not a {FORMAT} description")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ValueError(
            f"{where}: model file format version {version!r}, this backprop ({_version()}) reads "
            f"up to {FORMAT_VERSION}: upgrade backprop (written by "
            f"{metadata.get('library_version', 'an unknown version')})"
        )
    network = metadata.get("network")
    if not isinstance(network, Mapping):
        raise ValueError(f"{where}: its description has no network")
    layers = network.get("layers", [])
    types = sorted({str(layer.get("type")) for layer in layers if isinstance(layer, Mapping)})
    if any(t != "dense" for t in types):
        raise ValueError(f"{where}: layer types {types}; this version runs only dense layers")
    try:
        net = make_net(network.get("sizes"), network.get("activations"), network.get("output"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: its description's network is invalid: {exc}") from None
    if network.get("loss", net.loss) != net.loss:
        raise ValueError(f"{where}: loss {network.get('loss')!r} does not go with {net.output}")
    return net, str(net)


def load_model(path: str | os.PathLike[str]) -> Model:
    """Read a model file written by :func:`save` as a :class:`Model`, whatever saved it.

    Raises
    ------
    FileNotFoundError, PermissionError, IsADirectoryError
        As :func:`backprop.io.load_params`.
    ValueError
        If the file is not a model file (a weights-only ``.npz`` from
        :func:`backprop.io.save_params` has no description: load it with
        ``load_params(path, sizes)``), its description is invalid or from a
        newer format, or an array disagrees with it. Nothing is allocated
        beyond the arrays the description declares.
    """
    return _load(path)[0]


def _load(path: str | os.PathLike[str]) -> tuple[Model, dict[str, Any]]:
    found: dict[str, Any] = {}

    def plan(metadata: dict[str, Any] | None, where: str) -> Any:
        if metadata is None:
            raise ValueError(
                f"{where} holds weights only, no model description (written by save_params or "
                "an older backprop): load it with backprop.io.load_params(path, sizes)"
            )
        net, text = describe_file_net(metadata, where)
        dtype = metadata.get("dtype")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"{where}: dtype {dtype!r}, expected float32 or float64")
        expected: dict[str, tuple[int, ...]] = {}
        for i in range(net.n_layers):
            expected[f"w{i}"] = (net.sizes[i], net.sizes[i + 1])
            expected[f"b{i}"] = (net.sizes[i + 1],)
        if metadata.get("input_scaling") is not None:
            expected["mean"] = expected["scale"] = (net.sizes[0],)
        found.update(net=net, dtype=np.dtype(dtype), classes=_classes_from(metadata, net, where))
        return _io._Plan(expected, {}, text)

    metadata, arrays = _io.read_npz(path, plan)
    assert metadata is not None
    dtype = found["dtype"]
    for name, a in arrays.items():
        if a.dtype != dtype:
            raise ValueError(
                f"{str(path)!r}: {name} has dtype {a.dtype}, the description says {dtype}"
            )
    net: Net = found["net"]
    params = tuple(Layer(arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(net.n_layers))
    training = metadata.get("training")
    model = Model(
        net,
        params,
        found["classes"],
        arrays.get("mean"),
        arrays.get("scale"),
        dict(training) if isinstance(training, Mapping) else {},
        str(metadata.get("library_version", "")),
    )
    return model, metadata


def _classes_from(metadata: Mapping[str, Any], net: Net, where: str) -> np.ndarray | None:
    spec = metadata.get("classes")
    if spec is None:
        return None
    try:
        dtype = np.dtype(spec["dtype"])
        if dtype.kind not in _LABEL_KINDS:
            raise ValueError(f"label dtype {dtype} is not allowed")
        values = spec["values"]
        if not isinstance(values, list):
            raise ValueError("values is not a list")
        a = np.array(values, dtype=dtype)
        _classes_json(a, net)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: its classes are invalid: {exc}") from None
    return a


def load(path: str | os.PathLike[str]) -> Any:
    """Read a model file written by :func:`save`: a model that predicts.

    Returns a :class:`Model` (``predict``, ``predict_proba``, ``evaluate``),
    or, for a file saved from an estimator, a fitted estimator of its class
    (``MLPClassifier`` or ``MLPRegressor``) with the saved parameters and
    scikit-learn's fitted attributes (``coefs_``, ``intercepts_``,
    ``classes_`` and the label binarizer, ``n_outputs_``, ``n_layers_``,
    ``out_activation_``, ``n_features_in_``, ``feature_names_in_``); it
    predicts exactly as the saved one did, and has no training history
    (``loss_curve_`` and the like are absent).

    Raises
    ------
    As :func:`load_model`.
    """
    model, metadata = _load(path)
    if metadata.get("kind") == "network":
        return model
    spec = metadata.get("estimator")
    if not isinstance(spec, Mapping):
        raise ValueError(f"{str(path)!r}: kind {metadata.get('kind')!r} but no estimator section")
    return _to_estimator(model, spec, path)


def _to_estimator(model: Model, spec: Mapping[str, Any], path: Any) -> Any:
    from backprop import estimator as est_module

    name = spec.get("class")
    cls = getattr(est_module, str(name), None)
    if cls is None or not isinstance(cls, type):
        raise ValueError(f"{str(path)!r} was saved from {name!r}, which this backprop lacks")
    valid = set(cls().get_params())
    params = {
        k: v for k, v in dict(spec.get("params") or {}).items() if k in valid and v is not None
    }
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    est = cls(**params)
    est.coefs_ = [layer.w for layer in model.params]
    est.intercepts_ = [layer.b for layer in model.params]
    est.n_features_in_ = model.n_features
    est.n_outputs_ = model.net.sizes[-1]
    est.n_layers_ = len(model.net.sizes)
    est.out_activation_ = str(spec.get("out_activation"))
    names = spec.get("feature_names_in")
    if isinstance(names, list):
        est.feature_names_in_ = np.asarray(names, dtype=object)
    y_type = spec.get("y_type")
    if y_type is not None:  # a classifier: its label binarizer, refitted on its classes
        from backprop import sklearn_compat

        binarizer = sklearn_compat.LabelBinarizer()
        if y_type == "multilabel-indicator":
            binarizer.fit(np.eye(est.n_outputs_, dtype=int))
        else:
            binarizer.fit(model.classes)
        if binarizer.y_type_ != y_type:
            raise ValueError(
                f"{str(path)!r}: its classes {binarizer.classes_.tolist()} give targets of type "
                f"{binarizer.y_type_!r}, the file says {y_type!r}"
            )
        est._label_binarizer = binarizer
        est.classes_ = binarizer.classes_
    try:  # the estimator must predict from what was restored; say so here if it cannot
        est.predict(np.zeros((1, model.n_features), dtype=model.dtype))
    except (AttributeError, ValueError) as exc:  # pragma: no cover - needing more state
        raise ValueError(
            f"{str(path)!r}: this {name} cannot be restored from a file ({exc}); "
            "load it with backprop.model.load_model(path), which predicts the same"
        ) from None
    return est
