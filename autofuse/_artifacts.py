"""The artifact store of a shared run: where every worker puts its trials' outputs.

Workers on several machines share one Optuna study (in PostgreSQL) and one artifact store:
a folder every machine mounts (the default), or any store Optuna's artifact module
supports (``s3://bucket/prefix`` through ``optuna.artifacts.Boto3ArtifactStore``, which
needs ``boto3``: ``pip install 'autofuse[s3]'``), or an object with Optuna's artifact
store methods (``open_reader``, ``write``, ``remove``).

A reader must never see half a file. Optuna's ``upload_artifact`` records an artifact in
the study before its bytes are written, and its file-system store writes in place, so
autofuse does neither: a folder store writes each file under a temporary name and renames
it into place, and a trial names its artifacts (``Trial.user_attrs["artifacts"]``) only
after they are written, just before it is told finished. Fusion reads only finished trials,
so it only reads complete files. Artifact ids are the file names: ``STUDY-trial-N-TOKEN.
models`` (the fold models, ``autofuse._fold_models``) and ``...oof.npy`` (the out-of-fold
predictions), and ``STUDY-context-TOKEN.pkl`` (the run's table, target, folds, learners
and metric, which workers start from).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from typing import Any, BinaryIO, Iterator

#: Bytes read or written at a time.
CHUNK = 1 << 20


class FolderStore:
    """Optuna's artifact-store interface on a folder, with atomic writes: each file is
    written under a temporary name in the same folder and renamed into place."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    def _file(self, artifact_id: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", artifact_id) or artifact_id.startswith("."):
            raise ValueError(f"invalid artifact id {artifact_id!r}")
        return os.path.join(self.path, artifact_id)

    def open_reader(self, artifact_id: str) -> BinaryIO:
        from optuna.artifacts.exceptions import ArtifactNotFound

        try:
            return open(self._file(artifact_id), "rb")
        except FileNotFoundError as exc:
            raise ArtifactNotFound(f"artifact {artifact_id!r} not found in {self.path}") from exc

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        with _whole(self._file(artifact_id)) as f:
            shutil.copyfileobj(content_body, f, CHUNK)
            f.flush()
            os.fsync(f.fileno())

    def remove(self, artifact_id: str) -> None:
        from optuna.artifacts.exceptions import ArtifactNotFound

        try:
            os.remove(self._file(artifact_id))
        except FileNotFoundError as exc:
            raise ArtifactNotFound(f"artifact {artifact_id!r} not found in {self.path}") from exc

    def __repr__(self) -> str:
        return f"FolderStore({self.path!r})"


def open_store(location: Any, *, create: bool = False) -> Any:
    """The artifact store at ``location``: a folder path (made when ``create``), an
    ``s3://bucket/prefix`` URL, or a store object (returned as it is). A folder that does
    not exist, or a missing ``boto3``, is a ValueError that says what to do."""
    if not isinstance(location, str):
        if all(callable(getattr(location, m, None)) for m in ("open_reader", "write", "remove")):
            return location
        raise ValueError(f"artifacts must be a folder path, an s3:// URL or an Optuna artifact "
                         f"store; got {type(location).__name__} {location!r}")
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://"):].partition("/")
        import importlib.util

        if importlib.util.find_spec("boto3") is None:
            raise ValueError(f"the artifact store {location} needs boto3: pip install "
                             "'autofuse[s3]'")
        from optuna.artifacts import Boto3ArtifactStore

        return _Prefixed(Boto3ArtifactStore(bucket), prefix.strip("/"))
    if "://" in location:
        raise ValueError(f"unknown artifact store {location!r}: give a folder every worker "
                         "reaches, or s3://bucket/prefix")
    path = os.path.abspath(os.path.expanduser(location))
    if create:
        os.makedirs(path, exist_ok=True)
    elif not os.path.isdir(path):
        raise ValueError(f"the run's artifact store {path} is not a folder on this machine: "
                         "mount the shared folder there, or give where it is mounted here "
                         "(--artifacts DIR, or artifacts=)")
    return FolderStore(path)


class _Prefixed:
    """A store whose artifact ids all start with ``prefix/`` (a folder in a bucket)."""

    def __init__(self, store: Any, prefix: str) -> None:
        self.store, self.prefix = store, prefix

    def _id(self, artifact_id: str) -> str:
        return f"{self.prefix}/{artifact_id}" if self.prefix else artifact_id

    def open_reader(self, artifact_id: str) -> BinaryIO:
        return self.store.open_reader(self._id(artifact_id))

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.store.write(self._id(artifact_id), content_body)

    def remove(self, artifact_id: str) -> None:
        self.store.remove(self._id(artifact_id))


def location_of(location: Any) -> str | None:
    """What a run records of its store, for workers to open it: the folder's absolute path
    or the URL; None for a store object (every worker must then be given one)."""
    if isinstance(location, str):
        return location if "://" in location else os.path.abspath(os.path.expanduser(location))
    return None


def safe_name(text: str) -> str:
    """``text`` as part of an artifact id."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", text)[:60] or "study"


def new_id(prefix: str, suffix: str) -> str:
    return f"{safe_name(prefix)}-{uuid.uuid4().hex[:12]}{suffix}"


def put_file(store: Any, artifact_id: str, path: str) -> tuple[int, str]:
    """Write the file at ``path`` as ``artifact_id``; (its bytes, its SHA-256)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
        size = f.tell()
        f.seek(0)
        store.write(artifact_id, f)
    return size, digest.hexdigest()


def get_file(store: Any, artifact_id: str, path: str, sha256: str | None = None) -> None:
    """Copy ``artifact_id`` to ``path`` (replaced whole); with ``sha256``, a copy whose
    checksum differs is refused (ValueError) and not left behind."""
    digest = hashlib.sha256()
    with _whole(path) as dst, store.open_reader(artifact_id) as src:
        while block := src.read(CHUNK):
            digest.update(block)
            dst.write(block)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ValueError(f"artifact {artifact_id!r} is corrupted: its SHA-256 is "
                             f"{digest.hexdigest()[:12]}..., the run recorded "
                             f"{sha256[:12]}...")


@contextlib.contextmanager
def _whole(path: str) -> Iterator[BinaryIO]:
    """A file written under a temporary name beside ``path`` and renamed to it once the
    block ends; removed, and ``path`` left as it was, if the block raises."""
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise
