"""Ed25519 signatures over release manifests and ledger lines, so that whoever can write the release
store cannot forge a release without also holding the private key.

The signing key comes from `$SYNTH_SIGNING_KEY`: the path of a PEM file (PKCS#8, unencrypted; keep
it out of the release store), or the PEM text itself (a Kubernetes secret exposed as a variable).
Without it, a development key is generated on first use at
`$XDG_CONFIG_HOME/synth-pipeline/dev-signing-key.pem` (default `~/.config`, mode 0600); everything
it signs says `development_key: true`, because a key lying next to the code proves little.
"""

import base64
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from synth_pipeline.errors import BadInput

KEY_ENV = "SYNTH_SIGNING_KEY"
ALGORITHM = "Ed25519"
SIGNATURE_FILE = "manifest.sig"


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    fingerprint: str
    development: bool
    source: Path


@dataclass(frozen=True)
class PublicKey:
    """A key an auditor verifies with. `trusted`: given by the auditor (`--public-key`), so a
    signature by any other key is a problem; otherwise (this machine's own keys) it is used only
    when its fingerprint matches."""

    key: Ed25519PublicKey
    fingerprint: str
    source: str
    trusted: bool


def fingerprint(public: Ed25519PublicKey) -> str:
    """sha256 of the raw 32-byte public key, hex."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def dev_key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "synth-pipeline" / "dev-signing-key.pem"


def _read_private(path: Path, what: str, pem: bytes | None = None) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes() if pem is None else pem, password=None)
    except OSError as e:
        raise BadInput(f"{what} {path}: cannot read the signing key ({e.strerror})") from None
    except (ValueError, TypeError) as e:
        raise BadInput(f"{what} {path}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInput(f"{what} {path}: not an Ed25519 key ({type(key).__name__})")
    return key


def _create_dev_key(path: Path) -> None:
    """Written to a private temp file and linked into place: two first publishers agree on one key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _configured_key() -> tuple[Ed25519PrivateKey, Path] | None:
    """$SYNTH_SIGNING_KEY as the PEM text itself or as the path of a PEM file; None when unset."""
    configured = os.environ.get(KEY_ENV, "")
    if configured.lstrip().startswith("-----BEGIN"):
        return _read_private(Path(f"${KEY_ENV}"), "the PEM in", configured.encode()), Path(f"${KEY_ENV}")
    if configured:
        path = Path(configured).expanduser()
        return _read_private(path, KEY_ENV), path
    return None


def load_signing_key() -> SigningKey:
    """The configured key ($SYNTH_SIGNING_KEY), else the development key (created on first use)."""
    if (configured := _configured_key()) is not None:
        private, source = configured
        return SigningKey(private, fingerprint(private.public_key()), False, source)
    path = dev_key_path()
    if not path.exists():
        _create_dev_key(path)
    private = _read_private(path, "development signing key")
    return SigningKey(private, fingerprint(private.public_key()), True, path)


def load_public_key(path: Path) -> PublicKey:
    """An auditor's public key file (PEM, as `synth-pipeline key --public` writes it)."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as e:
        raise BadInput(f"--public-key {path}: cannot read ({e.strerror})") from None
    except ValueError as e:
        raise BadInput(f"--public-key {path}: not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BadInput(f"--public-key {path}: not an Ed25519 public key ({type(key).__name__})")
    return PublicKey(key, fingerprint(key), str(path), True)


def local_public_keys() -> list[PublicKey]:
    """Keys this machine holds (configured, development), without creating one: audit never signs."""
    out = []
    try:
        configured = _configured_key()
    except BadInput:
        configured = None
    if configured is not None:
        pub = configured[0].public_key()
        out.append(PublicKey(pub, fingerprint(pub), f"{KEY_ENV} {configured[1]}", False))
    dev = dev_key_path()
    if dev.is_file():
        try:
            pub = _read_private(dev, "development key").public_key()
        except BadInput:
            return out
        out.append(PublicKey(pub, fingerprint(pub), f"development key {dev}", False))
    return out


def sign(key: SigningKey, data: bytes) -> str:
    return base64.b64encode(key.private.sign(data)).decode("ascii")


def verifies(public: Ed25519PublicKey, data: bytes, signature_b64: str) -> bool:
    try:
        public.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def signing_fields(key: SigningKey) -> dict:
    """What the manifest says about its own signature (the signature itself is in manifest.sig)."""
    return {"algorithm": ALGORITHM, "key_fingerprint": key.fingerprint, "development_key": key.development,
            "signature_file": SIGNATURE_FILE}


def signature_document(key: SigningKey, manifest_bytes: bytes) -> bytes:
    """manifest.sig: the signature over the exact bytes of manifest.json, and the public key, which
    alone proves only self-consistency (a forger can replace both): audit with `--public-key`."""
    doc = {"algorithm": ALGORITHM, "signed_file": "manifest.json", "key_fingerprint": key.fingerprint,
           "public_key": public_pem(key.private.public_key()), "signature": sign(key, manifest_bytes)}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def embedded_public_key(doc: dict) -> PublicKey | None:
    """The public key a manifest.sig carries (untrusted), or None if it is not a valid Ed25519 key."""
    try:
        key = serialization.load_pem_public_key(str(doc.get("public_key", "")).encode())
    except ValueError:
        return None
    if not isinstance(key, Ed25519PublicKey):
        return None
    return PublicKey(key, fingerprint(key), "the key inside manifest.sig", False)
