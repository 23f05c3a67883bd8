"""An HTTPS front of Azurite's Blob service that speaks Entra ID, as Azure Storage does: what Azurite (HTTP,
no OAuth in this harness) cannot do for a client using its own identity.

`https://127.0.0.1:{port}/{account}/...` (path-style, like Azurite):
- a request with `Authorization: Bearer <token>`: the caller (a JWT's oid, else the app's identity) needs the
  role for the operation on the account, as Azure checks it (data actions: Storage Blob Data Reader /
  Contributor / Owner; Owner and Contributor hold none), else 403 `AuthorizationPermissionMismatch`; then
  the request goes on to Azurite with a short-lived account SAS in place of the token;
- `POST /{account}?restype=service&comp=userdelegationkey` with a bearer token: a user delegation key
  (needs `generateUserDelegationKey`: Storage Blob Delegator, the data roles, Contributor, Owner) whose value
  Azurite recomputes when it checks a user delegation SAS, so a SAS signed with it works on Azurite's own
  endpoint and here;
- a user delegation SAS (`skoid`) is checked here, as Azure checks it: its signature (with the string-to-sign
  of current SDKs, which Azurite 3.35 does not know: it lacks the signed-request-headers and -query lines),
  its times, its permissions for the operation, and its signer's data role at request time; then the request
  goes on with an account SAS in its place. A copy whose source (`x-ms-copy-source`) is a URL of this front
  gets the same treatment, pointed at Azurite;
- anything else (SharedKey, a service or account SAS) goes on unchanged: their signatures do not cover the
  host.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

from emulator.permissions import ArmAccess, principal_of
from emulator.server import Request, Response
from emulator.storage import StorageAccounts
from emulator.store import Config

# What Azurite's user delegation keys are derived with (node_modules/azurite: USERDELEGATIONKEY_BASIC_KEY):
# Azurite recomputes a key from the SAS's skoid, sktid, skt, ske and skv with it, whoever issued the key.
AZURITE_DELEGATION_KEY = (
    "I17GKLvcJUossaebtsEDZZ2RJ8GNLwLH4m7hRMxbVbkx6wNIRAABj4Rtw0FBhFuEAgmbL4gFMzUw+AStz9Sqdg=="
)
BLOB = "Microsoft.Storage/storageAccounts/blobServices"
DELEGATION_ACTION = f"{BLOB}/generateUserDelegationKey/action"
MAX_KEY_DAYS = 7
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "authorization"}
# A SAS's own parameters (what is replaced when the front passes a request on with its account SAS).
SAS_PARAMETERS = {
    "sv", "ss", "srt", "sp", "se", "st", "spr", "sip", "sr", "sig", "si", "skoid", "sktid", "skt",
    "ske", "sks", "skv", "saoid", "suoid", "scid", "sdd", "skdutid", "sduoid", "ses", "srh", "srq",
    "rscc", "rscd", "rsce", "rscl", "rsct",
}  # fmt: skip
_NEEDS = {"GET": "r", "HEAD": "r", "DELETE": "d"}


class FrontHost(Protocol):
    config: Config
    storage_accounts: StorageAccounts
    access: ArmAccess


def delegation_key_value(oid: str, tid: str, start: str, expiry: str, version: str) -> str:
    text = "\n".join((oid, tid, start, expiry, "b", version))
    digest = hmac.new(base64.b64decode(AZURITE_DELEGATION_KEY), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def required(method: str, query: dict[str, str], blob: bool) -> tuple[str, bool]:
    """(action, is a data action) Azure Storage checks for a Blob service request made with a token."""
    restype, comp = query.get("restype", ""), query.get("comp", "")
    if blob:
        verb = {"GET": "read", "HEAD": "read", "DELETE": "delete"}.get(method, "write")
        return f"{BLOB}/containers/blobs/{verb}", True
    if restype == "container" and comp == "list":
        return f"{BLOB}/containers/blobs/read", True
    if restype == "container":
        verb = {"GET": "read", "HEAD": "read", "DELETE": "delete"}.get(method, "write")
        return f"{BLOB}/containers/{verb}", False
    return f"{BLOB}/containers/read", False  # service level: list containers, properties


def storage_error(status: int, code: str, message: str) -> Response:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}\n'
        f"RequestId:{uuid.uuid4()}\nTime:{now}</Message></Error>"
    ).encode()
    return Response(status, body, {"Content-Type": "application/xml", "x-ms-error-code": code})


class StorageFront:
    def __init__(self, host: FrontHost) -> None:
        self.host = host

    def dispatch(self, request: Request) -> Response:
        target = urlsplit(request.raw_target)
        segments = [s for s in target.path.split("/") if s]
        if not segments:
            return storage_error(400, "InvalidUri", "The requested URI does not represent any resource.")
        account = segments[0]
        query = {k: v[0] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
        authorization = request.headers.get("authorization", "")
        scope = self.host.storage_accounts.scope(account)
        headers = {k: v for k, v in request.headers.items() if k not in _HOP_BY_HOP}
        query_string = target.query
        if authorization.lower().startswith("bearer "):
            principal = principal_of(authorization, self.host.config.app_principal_id)
            if query.get("comp") == "userdelegationkey" and query.get("restype") == "service":
                return self._delegation_key(request, principal, scope)
            action, data = required(request.method, query, len(segments) > 2)
            if not self.host.access.allows(principal, action, scope, data=data):
                return _mismatch()
            query_string = self._with_sas(target.query, account)
        elif "skoid" in query:
            refused = self._check_delegation_sas(request.method, query, unquote(target.path), scope)
            if refused is not None:
                return refused
            query_string = self._with_sas(_without_sas(target.query), account)
        elif authorization:
            headers["authorization"] = authorization
        source = headers.get("x-ms-copy-source")
        if source and urlsplit(source).netloc == self.host.storage_accounts.front:
            rewritten = self._copy_source(source)
            if isinstance(rewritten, Response):
                return rewritten
            headers["x-ms-copy-source"] = rewritten
        return self._forward(request, target.path, query_string, headers)

    def _check_delegation_sas(
        self, method: str, query: dict[str, str], path: str, scope: str
    ) -> Response | None:
        """Azure's checks of a user delegation SAS for this request; None when it may go on."""
        segments = [s for s in path.split("/") if s]
        key = delegation_key_value(
            query.get("skoid", ""), query.get("sktid", ""), query.get("skt", ""), query.get("ske", ""),
            query.get("skv", ""),
        )  # fmt: skip
        if query.get("sig") not in _signatures(query, segments, key):
            return storage_error(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of Authorization header is "
                "formed correctly including the signature.",
            )
        now = datetime.now(UTC)
        times = [_when(query.get(name)) for name in ("st", "se", "skt", "ske")]
        starts, expiry, key_starts, key_expiry = times
        if (
            expiry is None
            or key_expiry is None
            or now >= expiry
            or now >= key_expiry
            or (starts is not None and now < starts)
            or (key_starts is not None and now < key_starts)
        ):
            return storage_error(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Signature not valid in the specified time frame.",
            )
        blob = len(segments) > 2
        needed = "l" if query.get("comp") == "list" else _NEEDS.get(method, "w")
        permissions = query.get("sp", "")
        if needed not in permissions and not (needed == "w" and ("c" in permissions or "a" in permissions)):
            return _mismatch()
        if (blob and query.get("sr") not in ("b", "c", "bs", "bv")) or (not blob and query.get("sr") != "c"):
            return storage_error(
                403,
                "AuthorizationResourceTypeMismatch",
                "This request is not authorized to perform this operation using this resource type.",
            )
        action, data = required(method, query, blob)
        if not self.host.access.allows(query.get("skoid", ""), action, scope, data=data):
            return _mismatch()  # the signer's role counts at request time
        return None

    def _copy_source(self, source: str) -> str | Response:
        """A copy source on this front, as Azurite reaches it (a user delegation SAS checked here first)."""
        parts = urlsplit(source)
        segments = [s for s in parts.path.split("/") if s]
        origin = self.host.storage_accounts.blob_endpoint.rstrip("/").rsplit("/", 1)[0]
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if "skoid" in query and segments:
            scope = self.host.storage_accounts.scope(segments[0])
            refused = self._check_delegation_sas("GET", query, unquote(parts.path), scope)
            if refused is not None:
                return storage_error(
                    403, "CannotVerifyCopySource", "This request is not authorized to perform this operation."
                )
            return f"{origin}{parts.path}?{self._with_sas(_without_sas(parts.query), segments[0])}"
        return f"{origin}{parts.path}" + (f"?{parts.query}" if parts.query else "")

    def _delegation_key(self, request: Request, principal: str, scope: str) -> Response:
        if request.method != "POST":
            return storage_error(
                405, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb."
            )
        if not self.host.access.allows(principal, DELEGATION_ACTION, scope):
            return _mismatch()
        try:
            info = ET.fromstring(request.body.decode("utf-8"))  # noqa: S314 - a test client's request body
            start, expiry = info.findtext("Start") or "", info.findtext("Expiry") or ""
            begins = datetime.fromisoformat(start.replace("Z", "+00:00")) if start else datetime.now(UTC)
            ends = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
        except (ET.ParseError, UnicodeDecodeError, ValueError):
            return storage_error(400, "InvalidXmlDocument", "XML specified is not syntactically valid.")
        if ends <= begins or ends - datetime.now(UTC) > timedelta(days=MAX_KEY_DAYS):
            return storage_error(
                400,
                "InvalidXmlNodeValue",
                "The value for one of the XML nodes is not in the correct format. The key's expiry must be "
                f"after its start and within {MAX_KEY_DAYS} days.",
            )
        tenant = self.host.config.tenant_id
        version = request.headers.get("x-ms-version") or "2025-05-05"
        start = start or begins.strftime("%Y-%m-%dT%H:%M:%SZ")
        value = delegation_key_value(principal, tenant, start, expiry, version)
        body = (
            '<?xml version="1.0" encoding="utf-8"?><UserDelegationKey>'
            f"<SignedOid>{principal}</SignedOid><SignedTid>{tenant}</SignedTid>"
            f"<SignedStart>{start}</SignedStart><SignedExpiry>{expiry}</SignedExpiry>"
            f"<SignedService>b</SignedService><SignedVersion>{version}</SignedVersion>"
            f"<Value>{value}</Value></UserDelegationKey>"
        ).encode()
        return Response(200, body, {"Content-Type": "application/xml", "x-ms-version": version})

    def _with_sas(self, query: str, account: str) -> str:
        key = self.host.storage_accounts.key(account)
        if key is None:
            return query
        sas = generate_account_sas(
            account,
            key,
            ResourceTypes(service=True, container=True, object=True),
            AccountSasPermissions.from_string("rwdlacuptfx"),
            datetime.now(UTC) + timedelta(minutes=15),
        )
        return f"{query}&{sas}" if query else sas

    def _forward(self, request: Request, path: str, query: str, headers: dict[str, str]) -> Response:
        blob_endpoint = urlsplit(self.host.storage_accounts.blob_endpoint)
        connection = http.client.HTTPConnection(
            blob_endpoint.hostname or "127.0.0.1", blob_endpoint.port, timeout=60
        )
        try:
            connection.request(request.method, f"{path}?{query}" if query else path, request.body, headers)
            answer = connection.getresponse()
            content = answer.read()
            forwarded = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP}
            if request.method == "HEAD":
                forwarded["Content-Length"] = answer.getheader("Content-Length") or "0"
            return Response(answer.status, content, forwarded)
        except OSError as exc:
            return storage_error(503, "ServerBusy", f"Azurite did not answer: {type(exc).__name__}.")
        finally:
            connection.close()


def _without_sas(query: str) -> str:
    kept = [(k, v[0]) for k, v in parse_qs(query, keep_blank_values=True).items() if k not in SAS_PARAMETERS]
    return urlencode(kept, quote_via=quote)


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _signatures(query: dict[str, str], segments: list[str], key: str) -> set[str]:
    """The signatures a user delegation SAS may carry for this resource: the string-to-sign of current SDKs
    (with the signed request headers / query lines) and of service versions 2020-12-06 to 2025-07-05."""
    get = query.get
    if get("sr") == "c":  # a container SAS signs its container, whichever blob it is used on
        segments = segments[:2]
    resource = (
        f"/blob/{segments[0]}/" + "/".join(segments[1:]) if len(segments) > 1 else f"/blob/{segments[0]}"
    )
    head = [get("sp", ""), get("st", ""), get("se", ""), resource]
    signer = [get(n, "") for n in ("skoid", "sktid", "skt", "ske", "sks", "skv", "saoid", "suoid", "scid")]
    delegated = [get("skdutid", ""), get("sduoid", "")]
    middle = [get(n, "") for n in ("sip", "spr", "sv", "sr", "snapshot", "ses")]
    tail = [get(n, "") for n in ("rscc", "rscd", "rsce", "rscl", "rsct")]
    variants = [
        head + signer + delegated + middle + [get("srh", ""), get("srq", "")] + tail,
        head + signer + delegated + middle + tail,
        head + signer + middle + tail,
    ]
    secret = base64.b64decode(key)
    return {
        base64.b64encode(hmac.new(secret, "\n".join(v).encode("utf-8"), hashlib.sha256).digest()).decode()
        for v in variants
    }


def _mismatch() -> Response:
    return storage_error(
        403,
        "AuthorizationPermissionMismatch",
        "This request is not authorized to perform this operation using this permission.",
    )
