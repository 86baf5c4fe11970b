"""API tokens: who may call the service, stored as hashes in the work folder.

A token is ``spm_`` followed by :func:`secrets.token_urlsafe` of 32 random bytes (43
characters).  The prefix lets secret scanners (GitHub's, gitleaks, trufflehog) recognise a
leaked one with the pattern ``spm_[A-Za-z0-9_-]{43}``.  The token is shown once, when it is
created; the store keeps its SHA-256 only, beside its name, role, manager id and dates.

Why a fast hash is right here: password hashes (bcrypt, scrypt, Argon2) are slow on purpose
so that guessing a *low-entropy* secret from a stolen hash costs too much.  A token carries
256 bits from the operating system's random source: no dictionary, no guessing, so a stolen
hash gives nothing away whatever its speed; and a fast hash lets the service check a token at
every request in about a microsecond, where Argon2 would cost tens of milliseconds.

The store is one JSON file, ``settings.tokens_path(workdir)`` (``WORKDIR/tokens.json`` or
``$SPM_ML_TOKENS_FILE``), mode 0600, rewritten whole through a temporary file and a rename
under an exclusive lock, so a reader never sees it half-written and two concurrent
``spm-ml token create`` never lose one another's token.  The service re-reads it when it
changes, so a new or revoked token counts at the next request, without a restart.

Examples
--------
>>> store = TokenStore(tmp / "tokens.json")               # doctest: +SKIP
>>> secret = store.create("ann", "manager", manager_id="R00007")  # doctest: +SKIP
>>> store.lookup(secret).name                            # doctest: +SKIP
'ann'
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from spm_ml.errors import SpmMlError

logger = logging.getLogger(__name__)

Role = Literal["coach", "manager", "admin"]
ROLES: tuple[Role, ...] = ("coach", "manager", "admin")
TOKEN_PREFIX = "spm_"
TOKEN_BYTES = 32
"""Random bytes per token (``secrets.token_urlsafe``): 256 bits."""
FORMAT_VERSION = 1
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
"""A token's name: what the request log shows for its caller, so plain and short."""


class TokenError(SpmMlError, ValueError):
    """A token cannot be created or revoked as asked (duplicate name, missing manager id...)."""


@dataclass(frozen=True)
class TokenRecord:
    """One token as stored: everything but the token itself.

    ``sha256`` is the hex digest of the token; ``revoked_at`` is ``None`` while it is valid.
    """

    name: str
    role: Role
    manager_id: str | None
    sha256: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, str | None]:
        """What may be shown (``spm-ml token list``): every field but the hash."""
        fields = asdict(self)
        fields.pop("sha256")
        return fields


def token_hash(token: str) -> str:
    """SHA-256 hex digest of ``token`` (why a fast hash suffices: see the module docstring)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """A fresh token: ``spm_`` and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def index(records: tuple[TokenRecord, ...]) -> dict[str, TokenRecord]:
    """The valid records by their hash: what :func:`match` looks tokens up in."""
    return {record.sha256: record for record in records if record.active}


def match(by_hash: dict[str, TokenRecord], token: str) -> TokenRecord | None:
    """The valid record whose hash is the hash of ``token``, else ``None``.

    The presented token is hashed first and the hash is what is looked up, so a timing
    difference can only tell an attacker how the SHA-256 of a *guess* relates to the stored
    hashes, which brings no guess closer to a token (finding an input with a given hash is
    what SHA-256 makes infeasible); the final equality is still checked with
    :func:`hmac.compare_digest`.  The cost is the same for 10 tokens or 10,000.
    """
    presented = token_hash(token)
    record = by_hash.get(presented)
    if record is not None and hmac.compare_digest(record.sha256, presented):
        return record
    return None


class TokenStore:
    """The token file of a work folder: create, revoke, list, look up.

    Parameters
    ----------
    path
        The JSON file (``spm_ml.settings.tokens_path(workdir)``); created on the first
        :meth:`create`, with its folder.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def records(self) -> tuple[TokenRecord, ...]:
        """Every record, revoked ones included, in creation order (none without a file)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ()
        except OSError as err:  # e.g. a container user that may not read the mounted file
            raise SpmMlError(
                f"cannot read the token file {self.path} ({err.strerror or err}); run the "
                "service as the user owning it (mode 0600)"
            ) from err
        try:
            data = json.loads(text)
            return tuple(TokenRecord(**entry) for entry in data["tokens"])
        except (ValueError, KeyError, TypeError) as err:
            raise SpmMlError(
                f"{self.path} is not a token file spm-ml wrote ({type(err).__name__}); "
                "restore it from a backup, or move it away and create the tokens again"
            ) from err

    def has_active(self) -> bool:
        """Whether any token is valid (without one, the service refuses every request)."""
        return any(record.active for record in self.records())

    def list(self) -> list[dict[str, str | None]]:
        """Every token's name, role, manager id and dates; never a token nor its hash."""
        return [record.public() for record in self.records()]

    def lookup(self, token: str) -> TokenRecord | None:
        """The valid (not revoked) record of a presented token, else ``None``."""
        return match(index(self.records()), token)

    def create(self, name: str, role: str, *, manager_id: str | None = None) -> str:
        """Store a new token for ``name`` and return it: the only time it exists in clear.

        Raises
        ------
        TokenError
            ``name`` already used (revoked tokens keep their name), an unknown role, a
            manager without ``manager_id`` or another role with one.
        """
        role, manager_id = _checked(name, role, manager_id)
        token = new_token()
        record = TokenRecord(
            name=name,
            role=role,
            manager_id=manager_id,
            sha256=token_hash(token),
            created_at=_now(),
        )
        with self._locked():
            records = self.records()
            clash = next((r for r in records if r.name == name), None)
            if clash is not None:
                state = f"revoked {clash.revoked_at}" if clash.revoked_at else "active"
                raise TokenError(
                    f"a token named {name!r} already exists ({clash.role}, {state}); "
                    "names stay unique for the log's sake: choose another name"
                )
            self._write((*records, record))
        return token

    def revoke(self, name: str) -> TokenRecord:
        """Mark the token ``name`` revoked (kept for the record) and return it.

        Revoking a revoked token changes nothing and returns it as it was.

        Raises
        ------
        TokenError
            No token has that name.
        """
        with self._locked():
            records = self.records()
            position = next((i for i, r in enumerate(records) if r.name == name), None)
            if position is None:
                known = ", ".join(r.name for r in records) or "none"
                raise TokenError(f"no token named {name!r} in {self.path} (known: {known})")
            record = records[position]
            if record.revoked_at is not None:
                return record
            revoked = TokenRecord(**{**asdict(record), "revoked_at": _now()})
            self._write((*records[:position], revoked, *records[position + 1 :]))
        return revoked

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive lock on a side file, so concurrent writers take turns."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            os.close(lock)  # releases the lock

    def _write(self, records: tuple[TokenRecord, ...]) -> None:
        """Replace the file in one rename: readers see the old file or the new, never half."""
        payload = {"version": FORMAT_VERSION, "tokens": [asdict(r) for r in records]}
        handle, temp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)  # mode 0600
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(payload, out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise


_UNREAD = object()
"""The signature of a file not read yet: unequal to any, ``None`` (no file) included."""


class LiveTokens:
    """The records of a token file, re-read only when the file changes: the service's view.

    Each :meth:`lookup` costs one ``stat`` of the file (about a microsecond), a SHA-256 and
    a dictionary look-up (:func:`match`); the file is read again only when its inode, size or
    modification time moved, which every :class:`TokenStore` write does (a rename gives a
    new inode, so even a file system with coarse timestamps cannot hide a change).  A file
    that cannot be read as a token file counts as no tokens (every request refused) and is
    logged once per change.
    """

    def __init__(self, path: str | Path) -> None:
        self.store = TokenStore(path)
        self._path = str(self.store.path)  # os.stat of a str skips Path's conversion
        self._signature: object = _UNREAD
        self._records: tuple[TokenRecord, ...] = ()
        self._by_hash: dict[str, TokenRecord] = {}

    def current(self) -> tuple[TokenRecord, ...]:
        """Every record of the file as it is now (revoked ones included)."""
        try:
            stat = os.stat(self._path)
            signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except OSError:  # missing, or not ours to see: records() says which
            signature = None
        if signature != self._signature:
            self._signature = signature
            try:
                self._records = self.store.records()
            except SpmMlError as err:
                logger.error("every API token refused: %s", err)
                self._records = ()
            self._by_hash = index(self._records)
        return self._records

    def any_active(self) -> bool:
        self.current()
        return bool(self._by_hash)

    def lookup(self, token: str) -> TokenRecord | None:
        """The valid record of a presented token, else ``None``."""
        self.current()
        return match(self._by_hash, token)


def _checked(name: str, role: str, manager_id: str | None) -> tuple[Role, str | None]:
    if not NAME_PATTERN.match(name):
        raise TokenError(
            f"token name {name!r}: 1-64 characters, letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    if role not in ROLES:
        raise TokenError(f"role {role!r}: use one of {', '.join(ROLES)}")
    manager_id = manager_id.strip() if manager_id else None
    if role == "manager" and not manager_id:
        raise TokenError(
            "a manager token needs --manager-id: the rep_id of the manager, whose reports' "
            "attrition risk it may see"
        )
    if role != "manager" and manager_id:
        raise TokenError(
            f"--manager-id is for manager tokens only ({role} tokens see "
            f"{'every' if role == 'admin' else 'no'} rep's attrition risk)"
        )
    return role, manager_id  # type: ignore[return-value]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
