"""Bucket schemes: GluonNLP's ConstWidthBucket, LinearWidthBucket and ExpWidthBucket (same formulas, same rounding)."""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from typing import Any

from litzoo.errors import ConfigError

Key = int | tuple[int, ...]


class BucketScheme(abc.ABC):
    """Generates bucket keys from the longest and shortest lengths and the number of buckets."""

    @abc.abstractmethod
    def __call__(self, max_lengths: Key, min_lengths: Key, num_buckets: int) -> list[Key]:
        """Return ``num_buckets`` keys (ints, or tuples when lengths are tuples)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


def _per_dimension(fn: Any, max_lengths: Key, min_lengths: Key, num_buckets: int) -> list[Key]:
    """Apply a 1-d scheme to every dimension of tuple lengths and zip the keys back into tuples."""
    if isinstance(max_lengths, tuple):
        columns = [fn(mx, mn, num_buckets) for mx, mn in zip(max_lengths, min_lengths)]
        return [tuple(col[i] for col in columns) for i in range(num_buckets)]
    return fn(max_lengths, min_lengths, num_buckets)


class ConstWidthBucket(BucketScheme):
    """Buckets of equal width ``max((1 + max - min) // num_buckets, 1)``, counted down from the max."""

    def __call__(self, max_lengths: Key, min_lengths: Key, num_buckets: int) -> list[Key]:
        def one(mx: int, mn: int, n: int) -> list[int]:
            width = max((1 + mx - mn) // n, 1)
            return [max(mx - i * width, mn) for i in range(n)]

        return _per_dimension(one, max_lengths, min_lengths, num_buckets)


class LinearWidthBucket(BucketScheme):
    """Bucket widths growing linearly, ``w_i = alpha * i + 1``; the last key is at least the max."""

    def __call__(self, max_lengths: Key, min_lengths: Key, num_buckets: int) -> list[Key]:
        def one(mx: int, mn: int, n: int) -> list[int]:
            alpha = 2 * float(mx - mn - n) / (n * (n + 1))
            keys = [int(round(mn + alpha * (((i + 1) * (i + 2)) / 2) + i + 1)) for i in range(n)]
            keys[-1] = max(keys[-1], mx)
            return keys

        return _per_dimension(one, max_lengths, min_lengths, num_buckets)


class ExpWidthBucket(BucketScheme):
    """Bucket widths growing geometrically, ``w_i = bucket_len_step * w_{i-1}``; the last key is at least the max."""

    def __init__(self, bucket_len_step: float = 1.1) -> None:
        if not bucket_len_step > 1.0:
            raise ConfigError(
                f"ExpWidthBucket: bucket_len_step must be larger than 1 (got {bucket_len_step}); "
                "use ConstWidthBucket for equal widths."
            )
        self.bucket_len_step = float(bucket_len_step)

    def __call__(self, max_lengths: Key, min_lengths: Key, num_buckets: int) -> list[Key]:
        step = self.bucket_len_step

        def one(mx: int, mn: int, n: int) -> list[int]:
            initial_width = (mx - mn) * (step - 1) / (math.pow(step, n) - 1)
            keys = [
                int(round(mn + initial_width * (math.pow(step, i + 1) - 1) / (step - 1))) for i in range(n)
            ]
            keys[-1] = max(keys[-1], mx)
            return keys

        return _per_dimension(one, max_lengths, min_lengths, num_buckets)

    def __repr__(self) -> str:
        return f"ExpWidthBucket(bucket_len_step={self.bucket_len_step})"


_SCHEME_NAMES: dict[str, type[BucketScheme]] = {
    "constant": ConstWidthBucket,
    "const": ConstWidthBucket,
    "linear": LinearWidthBucket,
    "exp": ExpWidthBucket,
    "exponential": ExpWidthBucket,
}


def resolve_bucket_scheme(scheme: BucketScheme | str | Mapping[str, Any] | None) -> BucketScheme:
    """Accept a scheme object, a name ("constant", "linear", "exp") or ``{"name": "exp", "bucket_len_step": 1.2}``."""
    if scheme is None:
        return ConstWidthBucket()
    if isinstance(scheme, BucketScheme):
        return scheme
    if isinstance(scheme, str):
        name, options = scheme, {}
    elif isinstance(scheme, Mapping):
        options = dict(scheme)
        name = options.pop("name", None)
    else:
        name, options = None, {}
    cls = _SCHEME_NAMES.get(str(name).lower()) if name is not None else None
    if cls is None:
        raise ConfigError(
            f"Unknown bucket_scheme {scheme!r}. Use 'constant', 'linear' or 'exp' (or a mapping such as "
            "{name: exp, bucket_len_step: 1.2}, or a BucketScheme instance)."
        )
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"bucket_scheme {scheme!r}: {exc}.") from exc
