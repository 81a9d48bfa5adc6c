"""Keep secrets out of run directories.

A run directory is meant to be shared, so anything that looks like a credential
is replaced before it is written: values of keys whose name contains KEY, TOKEN,
SECRET or PASSWORD (config keys and `key=value` overrides alike), credentials in
URLs (`https://user:pass@host`), and the literal values of such environment
variables wherever they appear.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"
_SECRET_NAME = re.compile(r"(api[_-]?key|key|token|secret|passw(or)?d|credential)", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^/@\s:]+(:[^/@\s]*)?)@")
_OVERRIDE = re.compile(r"^(?P<key>[+~]*[\w./-]+)=(?P<value>.*)$")
# Names like "tokenizer", "max_tokens" or "keypoints" are not credentials.
_NOT_SECRET = re.compile(r"(tokeniz|tokens$|keypoint|bucket_keys|sort_keys|key_padding)", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a config key or environment variable name denotes a credential."""
    last = name.rsplit(".", 1)[-1]
    return bool(_SECRET_NAME.search(last)) and not _NOT_SECRET.search(last)


def secret_env_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables named like credentials (long enough to be meaningful)."""
    environ = os.environ if environ is None else environ
    return sorted({v for k, v in environ.items() if is_secret_name(k) and len(v) >= 6}, key=len, reverse=True)


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """Remove URL credentials and known secret values from free text."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    for value in secret_env_values() if secrets is None else secrets:
        text = text.replace(value, REDACTED)
    return text


def redact_override(override: str, secrets: list[str] | None = None) -> str:
    """Redact the value of a `key=value` command-line override whose key names a credential."""
    match = _OVERRIDE.match(override)
    if match and is_secret_name(match.group("key")):
        return f"{match.group('key')}={REDACTED}"
    return redact_text(override, secrets)


def redact(obj: Any, secrets: list[str] | None = None) -> Any:
    """A copy of a JSON-like structure with credential values replaced."""
    secrets = secret_env_values() if secrets is None else secrets
    if isinstance(obj, Mapping):
        return {
            k: (REDACTED if is_secret_name(str(k)) and obj[k] not in (None, "") else redact(v, secrets))
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [redact(v, secrets) for v in obj]
    if isinstance(obj, str):  # also catches `key=value` overrides stored as strings
        return redact_override(obj, secrets)
    return obj
