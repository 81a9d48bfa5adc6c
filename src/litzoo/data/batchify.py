"""Batchify functions: turn a list of samples into one mini-batch of tensors.

The names and semantics follow GluonNLP's ``gluonnlp.data.batchify`` so that its
users feel at home::

    collate = Tuple(Pad(pad_val=vocab.pad_id, ret_length=True), Stack())
    tokens, lengths, labels = ... = collate([(ids_a, 0), (ids_b, 1)])

Every function is a small class with plain attributes: it pickles, so DataLoader
workers can use it, and Hydra can build it from a config::

    collate_fn:
      _target_: litzoo.data.batchify.Dict
      input_ids: {_target_: litzoo.data.batchify.Pad, pad_val: 0, round_to: 8}
      label: {_target_: litzoo.data.batchify.Stack}

Inputs may be Python lists (or numbers), numpy arrays or tensors. The output
dtype is the input's: numpy and tensor dtypes are kept, Python data follows
``torch.tensor`` (ints -> int64, floats -> the default float dtype, bools -> bool).
``dtype=`` overrides it with a torch dtype, a numpy dtype or a name such as ``"float32"``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from litzoo.errors import ConfigError, DataError

__all__ = ["Pad", "Stack", "Tuple", "Dict", "NamedTuple", "List", "resolve_dtype"]

BatchifyFn = Callable[[Sequence[Any]], Any]


def resolve_dtype(dtype: Any) -> torch.dtype | None:
    """Turn a torch dtype, numpy dtype or dtype name (``"int64"``, ``"torch.float16"``) into a torch dtype."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        candidate = getattr(torch, name, None)
        if isinstance(candidate, torch.dtype):
            return candidate
    try:
        # torch knows the mapping from numpy dtypes; going through an empty array keeps it exact
        return torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype
    except TypeError as exc:
        raise ConfigError(
            f"batchify: dtype {dtype!r} is not a dtype torch understands. Use a torch dtype, a numpy "
            "dtype or a name such as 'int64', 'float32' or 'bool'."
        ) from exc


def _python_dtype(values: np.ndarray) -> torch.dtype:
    """The dtype torch.tensor would give to Python data that numpy parsed as ``values``."""
    if values.dtype == np.bool_:
        return torch.bool
    if np.issubdtype(values.dtype, np.integer):
        return torch.int64
    if np.issubdtype(values.dtype, np.floating):
        return torch.get_default_dtype()
    if np.issubdtype(values.dtype, np.complexfloating):
        return torch.complex64 if torch.get_default_dtype() == torch.float32 else torch.complex128
    raise DataError(
        f"batchify: cannot make a tensor from Python values of numpy kind {values.dtype}. Samples given "
        "to Pad/Stack must hold numbers; use batchify.List() for strings or other objects."
    )


def _as_tensor(sample: Any, index: int, who: str) -> torch.Tensor:
    """One sample as a CPU tensor with the dtype it should keep (see the module docstring)."""
    if isinstance(sample, torch.Tensor):
        return sample.detach()
    if isinstance(sample, np.ndarray):
        try:
            return torch.from_numpy(np.ascontiguousarray(sample))
        except TypeError as exc:
            raise DataError(
                f"batchify.{who}: sample {index} is a numpy array of dtype {sample.dtype}, which has no "
                "tensor equivalent. Convert it to numbers first or use batchify.List() for such fields."
            ) from exc
    try:
        array = np.asarray(sample)
    except ValueError as exc:  # ragged nested lists
        raise DataError(
            f"batchify.{who}: sample {index} is a ragged nested list and cannot become an array "
            f"({exc}). Pad its inner lists first or give numpy arrays of one shape."
        ) from exc
    dtype = _python_dtype(array)  # before from_numpy, which fails on strings with a less helpful message
    return torch.from_numpy(array).to(dtype)


class Stack:
    """Stack samples of the same shape into a batch of shape ``(N, *sample_shape)``.

    Numbers become a 1-d tensor of length N.

    Args:
        dtype: output dtype; ``None`` keeps the input's.
    """

    def __init__(self, dtype: Any = None) -> None:
        self.dtype = resolve_dtype(dtype)

    def __call__(self, data: Sequence[Any]) -> torch.Tensor:
        if len(data) == 0:
            raise DataError(
                "batchify.Stack received an empty batch; the sampler yielded a batch with no index."
            )
        tensors = [_as_tensor(x, i, "Stack") for i, x in enumerate(data)]
        shapes = [tuple(t.shape) for t in tensors]
        if len(set(shapes)) > 1:
            _raise_shape_mismatch("Stack", shapes)
        target = self.dtype if self.dtype is not None else _common_dtype([t.dtype for t in tensors])
        return torch.stack([t.to(target) for t in tensors])

    def __repr__(self) -> str:
        return f"Stack(dtype={self.dtype})"


class Pad:
    """Pad samples to the longest one along ``axis`` and stack them.

    Samples of shape ``(10, 8)``, ``(6, 8)`` and ``(3, 8)`` with ``axis=0`` become one
    tensor of shape ``(3, 10, 8)``; the padded positions hold ``pad_val``.

    Args:
        axis: the axis of each *sample* to pad (negative values count from the end).
        pad_val: the padding value (e.g. the vocabulary's padding index); ``None`` means 0.
        ret_length: also return the original lengths along ``axis`` as an int64 tensor.
        dtype: output dtype; ``None`` keeps the input's.
        round_to: round the padded length up to a multiple of this (e.g. 8 for tensor cores).
    """

    def __init__(
        self,
        axis: int = 0,
        pad_val: float | int | bool | None = 0,
        ret_length: bool = False,
        dtype: Any = None,
        round_to: int | None = None,
    ) -> None:
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise ConfigError(f"batchify.Pad: axis must be an integer, got {axis!r}.")
        if round_to is not None and (not isinstance(round_to, int) or round_to < 1):
            raise ConfigError(f"batchify.Pad: round_to must be a positive integer or None, got {round_to!r}.")
        self.axis = axis
        self.pad_val = 0 if pad_val is None else pad_val
        self.ret_length = ret_length
        self.dtype = resolve_dtype(dtype)
        self.round_to = round_to

    def __call__(self, data: Sequence[Any]) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if len(data) == 0:
            raise DataError(
                "batchify.Pad received an empty batch; the sampler yielded a batch with no index."
            )
        tensors = [_as_tensor(x, i, "Pad") for i, x in enumerate(data)]
        ndim = tensors[0].ndim
        if ndim == 0:
            raise DataError(
                "batchify.Pad: sample 0 is a scalar, so there is no axis to pad. Use batchify.Stack() for "
                "scalar fields such as labels."
            )
        if not -ndim <= self.axis < ndim:
            raise DataError(
                f"batchify.Pad: axis={self.axis} is out of range for samples with {ndim} dimensions "
                f"(shape {tuple(tensors[0].shape)}). Set Pad(axis=...) to an axis the samples have."
            )
        axis = self.axis % ndim
        first_shape = tuple(tensors[0].shape)
        other_shape = _other_dims(first_shape, axis)
        for i, t in enumerate(tensors):
            if t.ndim != ndim or _other_dims(tuple(t.shape), axis) != other_shape:
                raise DataError(
                    f"batchify.Pad: sample {i} has shape {tuple(t.shape)} but sample 0 has {first_shape}; "
                    f"only axis {self.axis} may differ between samples. Check the dataset's transform or "
                    "pad along the axis that varies."
                )
        lengths = [t.shape[axis] for t in tensors]
        max_length = max(lengths)
        if self.round_to is not None:
            max_length = self.round_to * math.ceil(max_length / self.round_to)
        target = self.dtype if self.dtype is not None else _common_dtype([t.dtype for t in tensors])
        out_shape = (len(tensors), *first_shape[:axis], max_length, *first_shape[axis + 1 :])
        out = torch.full(out_shape, self.pad_val, dtype=target)
        for i, t in enumerate(tensors):
            # narrow() is a view, so this writes the sample in place without building index tuples
            out[i].narrow(axis, 0, lengths[i]).copy_(t)
        if self.ret_length:
            return out, torch.tensor(lengths, dtype=torch.int64)
        return out

    def __repr__(self) -> str:
        return (
            f"Pad(axis={self.axis}, pad_val={self.pad_val!r}, ret_length={self.ret_length}, "
            f"dtype={self.dtype}, round_to={self.round_to})"
        )


class Tuple:
    """Apply the i-th function to the i-th field of every sample; return a tuple.

    ``Tuple(Pad(), Stack())`` and ``Tuple([Pad(), Stack()])`` are the same.
    """

    def __init__(self, fn: BatchifyFn | Sequence[BatchifyFn], *args: BatchifyFn) -> None:
        if not callable(fn) and isinstance(fn, Sequence):
            if args:
                raise ConfigError(
                    "batchify.Tuple takes either Tuple(f1, f2, ...) or Tuple([f1, f2, ...]), not a list "
                    "followed by more functions."
                )
            fns = tuple(fn)
        else:
            fns = (fn, *args)
        for i, f in enumerate(fns):
            if not callable(f):
                raise ConfigError(f"batchify.Tuple: function {i} ({f!r}) is not callable.")
        self.fns = fns

    def __call__(self, data: Sequence[Sequence[Any]]) -> tuple[Any, ...]:
        for i, sample in enumerate(data):
            if isinstance(sample, (str, bytes, Mapping)) or not isinstance(sample, Sequence):
                raise DataError(
                    f"batchify.Tuple: sample {i} is a {type(sample).__name__}, not a tuple/list of "
                    f"{len(self.fns)} fields. Make the dataset return one field per batchify function."
                )
            if len(sample) != len(self.fns):
                raise DataError(
                    f"batchify.Tuple: sample {i} has {len(sample)} fields but {len(self.fns)} batchify "
                    "functions were given. Give one function per field (batchify.List() keeps a field as is)."
                )
        return tuple(f([sample[i] for sample in data]) for i, f in enumerate(self.fns))

    def __repr__(self) -> str:
        return f"Tuple({', '.join(map(repr, self.fns))})"


class Dict:
    """Apply a function per key of dict samples; return a dict with those keys.

    ``Dict({"input_ids": Pad(), "label": Stack()})`` or ``Dict(input_ids=Pad(), label=Stack())``.
    Keys of the samples that have no function are left out of the batch.
    """

    def __init__(self, fn_dict: Mapping[str, BatchifyFn] | None = None, **fns: BatchifyFn) -> None:
        merged: dict[str, BatchifyFn] = dict(fn_dict.items()) if fn_dict is not None else {}
        merged.update(fns)
        if not merged:
            raise ConfigError("batchify.Dict needs at least one key: Dict(input_ids=Pad(), label=Stack()).")
        for key, f in merged.items():
            if not callable(f):
                raise ConfigError(f"batchify.Dict: the function for key {key!r} ({f!r}) is not callable.")
        self.fn_dict = merged

    def __call__(self, data: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        for i, sample in enumerate(data):
            if not isinstance(sample, Mapping):
                raise DataError(
                    f"batchify.Dict: sample {i} is a {type(sample).__name__}, not a dict. Make the dataset "
                    "return dicts or use batchify.Tuple."
                )
            missing = [key for key in self.fn_dict if key not in sample]
            if missing:
                raise DataError(
                    f"batchify.Dict: sample {i} has no key {missing[0]!r} (it has {sorted(sample)}). "
                    "Make the dataset return that key or remove it from the Dict batchify."
                )
        return {key: f([sample[key] for sample in data]) for key, f in self.fn_dict.items()}

    def __repr__(self) -> str:
        return f"Dict({self.fn_dict!r})"


class NamedTuple:
    """Batchify samples that are instances of a ``typing.NamedTuple``/``collections.namedtuple``.

    Args:
        container: the named-tuple class, or its import path ``"package.module.ClassName"``
            (handy in Hydra configs).
        fns: one function per field, as a sequence in field order or a mapping field -> function.
    """

    def __init__(self, container: type | str, fns: Sequence[BatchifyFn] | Mapping[str, BatchifyFn]) -> None:
        if isinstance(container, str):
            container = _import_object(container)
        fields = getattr(container, "_fields", None)
        if not isinstance(container, type) or fields is None:
            raise ConfigError(f"batchify.NamedTuple: container {container!r} is not a named-tuple class.")
        if isinstance(fns, Mapping):
            unknown = sorted(set(fns) - set(fields))
            missing = [f for f in fields if f not in fns]
            if unknown or missing:
                raise ConfigError(
                    f"batchify.NamedTuple: the functions' keys must be the fields {list(fields)} of "
                    f"{container.__name__}; unknown {unknown}, missing {missing}."
                )
            ordered = tuple(fns[f] for f in fields)
        else:
            ordered = tuple(fns)
            if len(ordered) != len(fields):
                raise ConfigError(
                    f"batchify.NamedTuple: {container.__name__} has {len(fields)} fields {list(fields)} but "
                    f"{len(ordered)} functions were given."
                )
        for name, f in zip(fields, ordered):
            if not callable(f):
                raise ConfigError(
                    f"batchify.NamedTuple: the function for field {name!r} ({f!r}) is not callable."
                )
        self.container = container
        self.fns = ordered

    def __call__(self, data: Sequence[Any]) -> Any:
        for i, sample in enumerate(data):
            if not isinstance(sample, self.container):
                raise DataError(
                    f"batchify.NamedTuple: sample {i} is a {type(sample).__name__}, not a "
                    f"{self.container.__name__}. Make the dataset return {self.container.__name__} instances."
                )
        return self.container(*(f([sample[i] for sample in data]) for i, f in enumerate(self.fns)))

    def __repr__(self) -> str:
        return f"NamedTuple({self.container.__name__}, {list(self.fns)!r})"


class List:
    """Return the samples unchanged, as a list (strings, variable-size objects)."""

    def __call__(self, data: Sequence[Any]) -> list[Any]:
        return list(data)

    def __repr__(self) -> str:
        return "List()"


def _other_dims(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return shape[:axis] + shape[axis + 1 :]


def _common_dtype(dtypes: Sequence[torch.dtype]) -> torch.dtype:
    """Promote like torch does, so a batch mixing int and float samples comes out float."""
    out = dtypes[0]
    for dtype in dtypes[1:]:
        out = torch.promote_types(out, dtype)
    return out


def _raise_shape_mismatch(who: str, shapes: Sequence[tuple[int, ...]]) -> None:
    first = next(i for i, s in enumerate(shapes) if s != shapes[0])
    raise DataError(
        f"batchify.{who}: sample {first} has shape {tuple(shapes[first])} but sample 0 has "
        f"{tuple(shapes[0])}; Stack needs samples of one shape. Use batchify.Pad(axis=...) for fields "
        "whose length varies."
    )


def _import_object(path: str) -> Any:
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"batchify.NamedTuple: cannot import {path!r} ({exc}). Give the full import path of the "
            "named-tuple class, e.g. 'my_package.data.Sample'."
        ) from exc
