"""The model file: a checked envelope around a pickled model, verified before it is unpickled.

Unpickling runs code: a corrupted or crafted pickle can crash the interpreter or do
anything the user can. So ``FusedModel.save`` writes, and ``autofuse.load`` reads::

    AUTOFUSE-MODEL\\n                      magic line
    {"checksum": ..., "format": 3, ...}\\n  header: one line of JSON (ASCII), no pickle
    <payload>                             the pickled model, ``length`` bytes

The header holds ``format``, ``versions`` (package versions the model was made with),
``length`` (the payload's bytes), ``checksum`` (``{"algorithm": "sha256", "digest": hex}``)
and ``signature`` (``null``, or ``{"algorithm": "hmac-sha256", "digest": hex}`` when it
was saved with a key). Both digests cover the same bytes: the magic line, the header's
other fields (as compact JSON with sorted keys, then a newline) and the payload, so a
changed version or length is caught as surely as a changed payload byte.

``read`` checks all of it before anything is unpickled: the magic, the header, the
length, then the signature when a key is in effect (the ``key`` argument, else the
``AUTOFUSE_MODEL_KEY`` environment variable), else the checksum. The checksum catches
corruption (a bad disk, a truncated copy), not tampering: whoever can change the file can
recompute it. Only the signature, an HMAC with a secret key that is never written to the
file, shows the model was saved by someone who holds the key.

The file is read into memory once and hashed there; the payload is unpickled from those
same bytes, so what was checked is what is loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import pickle
from typing import Any

#: The first line of every model file.
MAGIC = b"AUTOFUSE-MODEL\n"
#: The environment variable that holds the signing key when none is passed.
KEY_ENV = "AUTOFUSE_MODEL_KEY"
#: The header's line may not be longer than this (a corrupted newline would otherwise
#: make the whole payload a header).
MAX_HEADER = 1 << 20
_CHECKSUM, _SIGNATURE = "sha256", "hmac-sha256"


def resolve_key(key: str | bytes | None) -> tuple[bytes | None, str]:
    """The signing key in effect, as bytes, and where it came from (for messages): ``key``
    if given, else ``AUTOFUSE_MODEL_KEY`` if set, else none. An empty key is refused, so a
    secret that failed to arrive does not switch signing off unnoticed."""
    source = "the key given"
    if key is None:
        key = os.environ.get(KEY_ENV)
        source = f"the key in {KEY_ENV}"
        if key is None:
            return None, "no key"
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"a model key must be str or bytes, not {type(key).__name__}")
    if not key:
        raise ValueError(f"{source} is empty: give a non-empty key, or none "
                         f"(unset {KEY_ENV}) to skip signing")
    return bytes(key), source


def _covered(fields: dict[str, Any]) -> bytes:
    """What the digests cover before the payload: the magic and the header's fields."""
    return MAGIC + json.dumps(fields, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=True).encode("ascii") + b"\n"


def _checksum(head: bytes, payload: Any) -> str:
    """The SHA-256 of ``head`` (``_covered``) then ``payload``, in hex."""
    digest = hashlib.sha256(head)
    digest.update(payload)
    return digest.hexdigest()


def _sign(key: bytes, head: bytes, payload: Any) -> str:
    """The HMAC-SHA256 with ``key`` of ``head`` then ``payload``, in hex."""
    mac = hmac.new(key, head, hashlib.sha256)
    mac.update(payload)
    return mac.hexdigest()


def write(path: str, payload: bytes, fields: dict[str, Any],
          key: str | bytes | None = None) -> None:
    """Write ``payload`` (a pickle) to ``path`` under a header of ``fields`` (plain JSON
    data: ``format``, ``versions``), its length and checksum, and a signature when a key
    is in effect (see ``resolve_key``)."""
    secret, _ = resolve_key(key)
    fields = {**fields, "length": len(payload)}
    head = _covered(fields)
    header = {**fields, "checksum": {"algorithm": _CHECKSUM,
                                     "digest": _checksum(head, payload)},
              "signature": None if secret is None else
              {"algorithm": _SIGNATURE, "digest": _sign(secret, head, payload)}}
    line = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(line.encode("ascii") + b"\n")
        f.write(payload)


def read(path: str, key: str | bytes | None = None) -> tuple[dict[str, Any], memoryview]:
    """The header fields (``format``, ``versions``, ``length``) and the payload of the
    model file ``path``, checked: a ``ValueError`` naming the file and what failed if it
    is not a model file, was written by an older autofuse, is corrupted or truncated, or,
    when a key is in effect, is unsigned or signed with another key. Nothing is unpickled
    (an older file's header is read with every class refused)."""
    secret, source = resolve_key(key)
    with open(path, "rb") as f:
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            raise ValueError(_not_a_model_file(path, magic + f.read(MAX_HEADER)))
        data = f.read()  # the rest, once: what is checked is what is unpickled
    end = data.find(b"\n", 0, MAX_HEADER)
    if end < 0:
        raise ValueError(f"{path} is corrupted: its header has no end (the file was changed "
                         "or truncated)")
    header = _parse_header(path, data[:end])
    payload = memoryview(data)[end + 1:]
    fields = {k: v for k, v in header.items() if k not in ("checksum", "signature")}
    if len(payload) != fields["length"]:
        raise ValueError(f"{path} is corrupted: it holds {len(payload)} bytes of model where "
                         f"its header says {fields['length']} (the file was truncated or "
                         "changed)")
    head = _covered(fields)
    signature = header["signature"]
    if secret is not None:  # the signature alone (it covers what the checksum covers)
        if signature is None:
            raise ValueError(f"{path} is not signed, and {source} requires a signed model: "
                             "refusing to load it. Save it again with the key (only if you "
                             "trust it)")
        if hmac.compare_digest(_sign(secret, head, payload), signature["digest"]):
            return fields, payload
    if not hmac.compare_digest(_checksum(head, payload), header["checksum"]["digest"]):
        raise ValueError(f"{path} is corrupted: its checksum does not match (the file was "
                         "changed or truncated)")
    if secret is not None:  # intact, but not signed with this key
        raise ValueError(f"{path}'s signature does not match {source}: it was signed with "
                         "another key, or changed after it was signed. Refusing to load it")
    return fields, payload


def _parse_header(path: str, line: bytes) -> dict[str, Any]:
    """The header's fields, each of the expected type, or a ``ValueError``."""
    try:
        header = json.loads(line.decode("ascii"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"{path} is corrupted: its header cannot be read ({exc})") from exc
    problem = _header_problem(header)
    if problem:
        raise ValueError(f"{path} is corrupted: its header {problem}")
    return header


def _header_problem(header: Any) -> str | None:
    if not isinstance(header, dict):
        return "is not a record"
    for name, kind in (("format", int), ("versions", dict), ("length", int),
                       ("checksum", dict)):
        if not isinstance(header.get(name), kind) or isinstance(header.get(name), bool):
            return f"has no valid {name!r}"
    if header["length"] < 0:
        return "has a negative length"
    if not all(isinstance(k, str) and isinstance(v, str)
               for k, v in header["versions"].items()):
        return "has versions that are not text"
    for name, algorithm in (("checksum", _CHECKSUM), ("signature", _SIGNATURE)):
        digest = header.get(name)
        if name == "signature" and digest is None:
            continue
        if not isinstance(digest, dict) or not isinstance(digest.get("digest"), str):
            return f"has no valid {name!r}"
        if digest.get("algorithm") != algorithm:
            return f"names an unknown {name} algorithm {digest.get('algorithm')!r}"
    return None


class _DataOnly(pickle.Unpickler):
    """An unpickler of plain data only: every class, and so every call, is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused {module}.{name}")


def _not_a_model_file(path: str, data: bytes) -> str:
    """Why a file that starts with ``data`` and not the magic line is refused: an older
    autofuse's model (a pickled header dict, then the model, unchecked), or not a model
    file at all."""
    header = None
    if data[:1] == b"\x80":  # a pickle: read its first object as plain data, nothing else
        try:
            header = _DataOnly(io.BytesIO(data[:MAX_HEADER])).load()
        except Exception:  # noqa: BLE001 - anything unreadable is simply not ours
            header = None
    if isinstance(header, dict) and "format" in header and "versions" in header:
        versions = header["versions"] if isinstance(header["versions"], dict) else {}
        made = f", autofuse {versions['autofuse']}" if "autofuse" in versions else ""
        return (f"{path} was written by an older autofuse (model format "
                f"{header['format']}{made}): a bare pickle, which cannot be checked before it "
                "is unpickled (and unpickling runs code), so it is not loaded. Refit the "
                "model and save it again (a run folder: autofuse fit DATA --out RUN --trials "
                "0 fuses it anew); only if you trust the file, unpickle it yourself (two "
                "pickle.load calls: a header, then the model) and save it again")
    return f"{path} is not an autofuse model file (it does not start with {MAGIC[:-1]!r})"
