"""Replace NHS numbers with a keyed hash (HMAC-SHA256) before anything is stored.

Why keyed: there are only about a billion valid NHS numbers, so a plain hash can be reversed by
trying them all. An HMAC with a secret key cannot, while the same patient still gets the same
pseudonym in every file, which is what linking a pathway needs.

The key comes from ``CARECONTRACT_KEY`` (at least 32 bytes), else from the file named by
``CARECONTRACT_KEY_FILE``, else from ``~/.config/carecontract/pseudonymisation.key``, created on
first use with owner-only permissions. The store records a fingerprint of the key it was built
with and refuses a different one, so two halves of a store can never carry unlinkable pseudonyms.

The HMAC is computed inside DuckDB (``sha256`` over blobs) so millions of rows hash without a
Python loop; :func:`pseudonym` is the Python reference the tests hold it to.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from carecontract.errors import UserError

KEY_ENV = "CARECONTRACT_KEY"
KEY_FILE_ENV = "CARECONTRACT_KEY_FILE"
DEFAULT_KEY_FILE = Path("~/.config/carecontract/pseudonymisation.key")
_BLOCK = 64  # SHA-256 block size in bytes
MIN_KEY_BYTES = 32  # NIST SP 800-107: an HMAC key at least as long as the security wanted (256 bits)


@dataclass(frozen=True)
class PseudonymKey:
    """A secret key and the HMAC pads derived from it."""

    secret: bytes

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible identifier of the key, safe to store beside the data."""
        return hashlib.sha256(b"carecontract-key-fingerprint:" + self.secret).hexdigest()[:16]

    def _padded(self) -> bytes:
        key = hashlib.sha256(self.secret).digest() if len(self.secret) > _BLOCK else self.secret
        return key.ljust(_BLOCK, b"\0")

    @property
    def inner_pad(self) -> bytes:
        return bytes(b ^ 0x36 for b in self._padded())

    @property
    def outer_pad(self) -> bytes:
        return bytes(b ^ 0x5C for b in self._padded())


class PseudonymKeyError(UserError, ValueError):
    """A key that would not keep pseudonyms secret, or a key file that cannot be read, in one line."""


def load_key() -> PseudonymKey:
    """The key in force: environment variable, key file, or a new key file made on first use.

    A key shorter than :data:`MIN_KEY_BYTES` is refused: an empty key file would make every pseudonym
    a keyless HMAC that anyone can recompute from an NHS number."""
    value = os.environ.get(KEY_ENV)
    if value:
        return PseudonymKey(_long_enough(value.encode(), f"${KEY_ENV}"))
    path = Path(os.environ.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE).expanduser()
    if path.is_dir():
        raise PseudonymKeyError(f"{path}: the pseudonymisation key file is a directory; name a file (${KEY_FILE_ENV})")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise PseudonymKeyError(f"{path}: cannot read the pseudonymisation key ({exc.strerror})") from None
    return PseudonymKey(_long_enough(secret, str(path)))


def _long_enough(secret: bytes, where: str) -> bytes:
    if len(secret) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"{where}: the pseudonymisation key is {len(secret)} bytes; it needs at least {MIN_KEY_BYTES} "
            "random bytes (python3 -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return secret


def pseudonym(key: PseudonymKey, nhs_number: str) -> str:
    """HMAC-SHA256 of an NHS number, hex encoded: the reference for :func:`pseudonym_sql`."""
    return hmac.new(key.secret, nhs_number.encode(), hashlib.sha256).hexdigest()


def pseudonym_sql(column: str) -> str:
    """SQL for the HMAC of ``column``; the pads are bound as parameters ``$opad`` and ``$ipad``."""
    return f"sha256($opad::BLOB || unhex(sha256($ipad::BLOB || {column}::BLOB)))"
