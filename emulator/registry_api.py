"""The container registry data plane, one HTTPS port per registry (`https://127.0.0.1:{port}`), as
`azure-containerregistry` (ContainerRegistryClient) and Docker-style clients use it:

- the token challenge: a request without a valid ACR access token gets 401 with
  `WWW-Authenticate: Bearer realm="https://{host}/oauth2/token",service="{host}",scope="..."`;
- `POST /oauth2/exchange` (an Entra token for an ACR refresh token), `POST /oauth2/token` (a refresh token
  for an access token of the requested scope);
- `GET /acr/v1/_catalog`, `GET /acr/v1/{repo}`, `GET /acr/v1/{repo}/_tags[/{tag}]`,
  `GET /acr/v1/{repo}/_manifests[/{digest}]` (paging: `n`, `last`, `orderby`, a `Link: <...>; rel="next"`);
- `GET|HEAD /v2/`, `GET /v2/_catalog`, `GET /v2/{repo}/tags/list`, `GET|HEAD /v2/{repo}/manifests/{ref}`
  (the manifest's exact bytes, `Docker-Content-Digest` = their sha256);
- `GET /v2/{repo}/referrers/{digest}` (referrers.py), pushes and deletes of blobs and manifests
  (registry_writes.py);
- throttling (registry_limits.py): an injected 429 on any route, the ListReferrers limits.

Errors have ACR's shape `{"errors": [{"code", "message", "detail"}]}`.
The admin routes of `/_emulator/registries/{name}/...` that belong to the data plane are here too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode

from emulator import ids, referrers
from emulator.acr import REGISTRIES, Registries, login_server
from emulator.arm_errors import ApiError
from emulator.clock import Clock, iso
from emulator.registry_content import Manifest
from emulator.registry_http import COMMON_HEADERS, throttled
from emulator.registry_http import error as _error
from emulator.registry_writes import Writer
from emulator.resources import ResourceManager
from emulator.server import HttpsServer, Request, Response
from emulator.store import Config, State
from emulator.tls import Certificates


class RegistryHost(Protocol):
    """What the data plane uses of the emulator (runtime.Emulator is one; this module never imports it)."""

    state: State
    config: Config
    clock: Clock
    resources: ResourceManager
    registries: Registries
    certificates: Certificates


DEFAULT_PAGE_SIZE = 100  # the emulator's page when a request has no `n` (not checked against ACR)
REFRESH_TOKEN_SECONDS = 3 * 3600
ACCESS_TOKEN_SECONDS = 75 * 60
READ_ACTIONS = ("pull", "metadata_read", "content_read")  # what AcrPull grants on a repository
WRITE_ACTIONS = ("push", "delete", "metadata_write", "content_write")  # AcrPush / AcrDelete (granted too)
AUTH_HELP = "visit https://aka.ms/acr/authorization for more information."
ORDERS = ("timedesc", "timeasc")


@dataclass(frozen=True)
class Scope:
    """A token scope `type:name:actions` (`repository:samples/hello:pull`, `registry:catalog:*`)."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        parts = text.split(":")
        if len(parts) < 3 or not parts[0] or not parts[-1]:
            return None
        return cls(parts[0], ":".join(parts[1:-1]), tuple(a for a in parts[-1].split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def detail(self) -> list[dict[str, str]]:
        return [{"Type": self.type, "Name": self.name, "Action": a} for a in self.actions]


CATALOG = Scope("registry", "catalog", ("*",))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def entra_principal(token: str) -> tuple[str | None, str | None]:
    """(object or application id, tenant) of an Entra token that is a JWT; (None, None) for an opaque
    token (the emulator's /msi/token hands out opaque ones). Signatures are not checked."""
    parts = token.split(".")
    if len(parts) != 3:
        return None, None
    try:
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None, None
    if not isinstance(claims, dict):
        return None, None
    principal = claims.get("oid") or claims.get("appid") or claims.get("azp") or claims.get("sub")
    return (str(principal) if principal else None), (str(claims["tid"]) if claims.get("tid") else None)


class Tokens:
    """ACR refresh and access tokens: JWT-shaped (header.payload.signature, HMAC-SHA256 with a key of this
    emulator), so the SDK can read `exp` from the payload (it decodes it with plain base64)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def issue(self, claims: dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "acr-emulator"}).encode())
        text = json.dumps(claims, separators=(",", ":"), sort_keys=True)
        text += " " * (-len(text.encode("utf-8")) % 3)  # no base64 padding: the SDK's decoder pads oddly
        payload = _b64(text.encode("utf-8"))
        signature = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def verify(self, token: str, kind: str, audience: str) -> dict[str, Any] | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(parts[2])):
                return None
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        if (
            not isinstance(claims, dict)
            or claims.get("kind") != kind
            or claims.get("aud") != audience
            or float(claims.get("exp") or 0) < time.time()
        ):
            return None
        return claims


class RegistryDataPlane:
    """The data-plane servers (one per registry name) and their routes."""

    def __init__(self, emulator: RegistryHost) -> None:
        self.emulator = emulator
        self.tokens = Tokens()
        self._lock = threading.Lock()
        self._servers: dict[str, HttpsServer] = {}  # registry name (lower) -> its server
        self._names: dict[int, str] = {}  # port -> registry name (lower)

    # --- ports

    def listen(self, name: str) -> int:
        """Open (or reuse) the HTTPS port of the registry named `name`; returns the port."""
        with self._lock:
            server = self._servers.get(name.lower())
            if server is None:
                server = HttpsServer(self.emulator.certificates.server_context(), self.dispatch, 0)
                server.start()
                self._servers[name.lower()] = server
                self._names[server.port] = name.lower()
            return server.port

    def endpoint(self, name: str) -> str:
        """`https://127.0.0.1:{port}` of an existing registry; 404 RegistryNotFound for an unknown name."""
        if self._registry_id(name) is None:
            raise ApiError(404, "RegistryNotFound", f"No registry named '{name}' exists in the emulator.")
        return f"https://127.0.0.1:{self.listen(name)}"

    def endpoints(self) -> dict[str, str]:
        """{registry name: endpoint} of every registry the emulator holds."""
        names = sorted({r.body["name"] for r in self.emulator.resources.by_type(REGISTRIES)}, key=str.lower)
        return {name: f"https://127.0.0.1:{self.listen(name)}" for name in names}

    def stop(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
            self._names.clear()
        for server in servers:
            server.stop()

    def _registry_id(self, name: str) -> str | None:
        for resource in self.emulator.resources.by_type(REGISTRIES):
            if resource.body["name"].lower() == name.lower():
                return resource.id
        return None

    # --- requests

    def dispatch(self, request: Request) -> Response:
        with self._lock:
            name = self._names.get(request.port)
        registry_id = self._registry_id(name) if name else None
        if name is None or registry_id is None:
            return _error(404, "NOT_FOUND", f"The registry '{name}' does not exist in the emulator.")
        host = request.headers.get("host") or f"127.0.0.1:{request.port}"
        context = _Context(self, registry_id, name, host, request)
        return context.handle()


class _Context:
    """One request to one registry."""

    def __init__(
        self, plane: RegistryDataPlane, registry_id: str, name: str, host: str, request: Request
    ) -> None:
        self.plane = plane
        self.emulator = plane.emulator
        self.store = plane.emulator.registries.store
        self.registry_id = registry_id
        self.key = ids.key(registry_id)
        self.server = login_server(name)  # what the body's "registry" and the tokens' audience name
        self.host = host
        self.request = request
        self.principal: str | None = None  # the caller, once its access token is read

    # --- routing

    def handle(self) -> Response:
        request = self.request
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["oauth2"]:
            if request.method != "POST" or parts[1:] not in (["exchange"], ["token"]):
                return _error(405, "UNSUPPORTED", f"{request.method} {request.path} is not emulated.")
            return self._exchange() if parts[1] == "exchange" else self._token()
        if self._lacks_referrers_api(parts):
            return referrers.lacks_api_answer()
        route = self._route(parts)
        if route is None:
            return _error(404, "NOT_FOUND", f"No route {request.method} {request.path}.")
        scope, action = route
        denied = self._authorize(scope)
        if denied is not None:
            return denied
        retry_after = self.store.throttles.injected(self.key, request.method, request.path)
        if retry_after is not None:
            return throttled(retry_after)
        return action()

    def _lacks_referrers_api(self, parts: list[str]) -> bool:
        return (
            len(parts) >= 4
            and parts[0] == "v2"
            and parts[-2] == "referrers"
            and not self.store.settings_of(self.key).referrers_api
        )

    def _scope(self, repository: str) -> Scope:
        """The scope a /v2/ request needs: reads `pull`, pushes `pull,push`, deletes `delete`."""
        method = self.request.method
        if method in ("GET", "HEAD"):
            return Scope("repository", repository, ("pull",))
        if method == "DELETE":
            return Scope("repository", repository, ("delete",))
        return Scope("repository", repository, ("pull", "push"))

    def _only(self, methods: tuple[str, ...], action: Any) -> Any:
        if self.request.method in methods and action is not None:
            return action
        return lambda: _error(405, "UNSUPPORTED", f"{self.request.method} is not supported on this route.")

    def _writer(self, repository: str) -> Writer:
        registries = self.emulator.registries
        return Writer(registries, self.registry_id, repository, self.request, self.principal or "")

    def _route(self, parts: list[str]) -> tuple[Scope | None, Any] | None:
        reads = ("GET", "HEAD")
        if parts[:2] == ["acr", "v1"]:
            rest = parts[2:]
            if rest == ["_catalog"]:
                return CATALOG, self._only(reads, lambda: self._catalog(acr=True))
            marker = next((i for i, s in enumerate(rest) if i > 0 and s in ("_tags", "_manifests")), None)
            if marker is not None:
                repository, reference = "/".join(rest[:marker]), "/".join(rest[marker + 1 :]) or None
                scope = Scope("repository", repository, ("metadata_read",))
                if rest[marker] == "_tags":
                    return scope, self._only(reads, lambda: self._tags(repository, reference))
                return scope, self._only(reads, lambda: self._manifests(repository, reference))
            if rest:
                repository = "/".join(rest)
                return Scope("repository", repository, ("metadata_read",)), self._only(
                    reads, lambda: self._repository(repository)
                )
            return None
        if parts[:1] == ["v2"]:
            return self._v2_route(parts[1:])
        return None

    def _v2_route(self, rest: list[str]) -> tuple[Scope | None, Any] | None:
        reads = ("GET", "HEAD")
        method = self.request.method
        if not rest:
            return None, self._only(reads, lambda: Response(200, {}, dict(COMMON_HEADERS)))
        if rest == ["_catalog"]:
            return CATALOG, self._only(reads, lambda: self._catalog(acr=False))
        if len(rest) >= 3 and rest[-2] == "manifests":
            repository, reference = "/".join(rest[:-2]), rest[-1]
            manifests = {
                "GET": lambda: self._manifest_document(repository, reference),
                "HEAD": lambda: self._manifest_document(repository, reference),
                "PUT": lambda: self._writer(repository).put_manifest(reference),
                "DELETE": lambda: self._writer(repository).delete_manifest(reference),
            }
            return self._scope(repository), self._only(tuple(manifests), manifests.get(method))
        if len(rest) >= 3 and rest[-2:] == ["tags", "list"]:
            repository = "/".join(rest[:-2])
            return self._scope(repository), self._only(reads, lambda: self._tag_names(repository))
        if len(rest) >= 3 and rest[-2] == "referrers":
            repository, subject = "/".join(rest[:-2]), rest[-1]
            return self._scope(repository), self._only(("GET",), lambda: self._referrers(repository, subject))
        if len(rest) >= 3 and rest[-2:] == ["blobs", "uploads"]:
            repository = "/".join(rest[:-2])
            return self._scope(repository), self._only(
                ("POST",), lambda: self._writer(repository).start_upload()
            )
        if len(rest) >= 4 and rest[-3:-1] == ["blobs", "uploads"]:
            repository, session = "/".join(rest[:-3]), rest[-1]
            sessions = {
                "PATCH": lambda: self._writer(repository).upload_chunk(session),
                "PUT": lambda: self._writer(repository).finish_upload(session),
                "GET": lambda: self._writer(repository).upload_status(session),
                "DELETE": lambda: self._writer(repository).cancel_upload(session),
            }
            scope = Scope("repository", repository, ("pull", "push"))
            return scope, self._only(tuple(sessions), sessions.get(method))
        if len(rest) >= 3 and rest[-2] == "blobs":
            repository, digest = "/".join(rest[:-2]), rest[-1]
            blobs = {
                "GET": lambda: self._writer(repository).get_blob(digest),
                "HEAD": lambda: self._writer(repository).get_blob(digest),
                "DELETE": lambda: self._writer(repository).delete_blob(digest),
            }
            return self._scope(repository), self._only(tuple(blobs), blobs.get(method))
        return None

    def _referrers(self, repository: str, subject: str) -> Response:
        return referrers.list_referrers(
            self.emulator.registries,
            self.registry_id,
            repository,
            subject,
            self.request.query,
            self.principal or "anonymous",
        )

    # --- authentication and authorization

    def _challenge(self, scope: Scope | None) -> dict[str, str]:
        value = f'Bearer realm="https://{self.host}/oauth2/token",service="{self.host}"'
        if scope is not None:
            value += f',scope="{scope}"'
        return {"WWW-Authenticate": value}

    def _unauthorized(self, scope: Scope | None, message: str = "authentication required") -> Response:
        return _error(
            401,
            "UNAUTHORIZED",
            f"{message}, {AUTH_HELP}",
            scope.detail() if scope else None,
            self._challenge(scope),
        )

    def _authorize(self, scope: Scope | None) -> Response | None:
        authorization = self.request.headers.get("authorization", "")
        if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
            return self._unauthorized(scope)
        claims = self.plane.tokens.verify(authorization[7:].strip(), "access", self.server)
        if claims is None:
            return self._unauthorized(scope)
        self.principal = str(claims.get("sub") or "") or None
        status = self.store.denial(self.key, claims.get("sub"))
        if status == 403:
            return _error(
                403,
                "DENIED",
                "requested access to the resource is denied",
                scope.detail() if scope else None,
            )
        if status is not None or (scope is not None and not _covers(claims.get("access") or [], scope)):
            return self._unauthorized(scope)
        return None

    def _form(self) -> dict[str, str]:
        try:
            return dict(parse_qsl(self.request.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return {}

    def _service_matches(self, service: str) -> bool:
        port = self.request.port
        aliases = {self.host, f"127.0.0.1:{port}", f"localhost:{port}", self.server}
        return service.lower() in {a.lower() for a in aliases}

    def _exchange(self) -> Response:
        form = self._form()
        grant = form.get("grant_type", "")
        if grant not in ("access_token", "access_token_refresh_token"):
            return _error(400, "UNSUPPORTED", f"The grant_type '{grant}' is not supported by the emulator.")
        entra = form.get("access_token", "")
        if not entra:
            return _error(400, "UNAUTHORIZED", "The access_token (an Entra token) is required.")
        if not self._service_matches(form.get("service", "")):
            return _error(
                401, "UNAUTHORIZED", f"The service '{form.get('service', '')}' is not this registry."
            )
        principal, tenant = entra_principal(entra)
        now = int(time.time())
        claims = {
            "kind": "refresh",
            "iss": "Azure Container Registry (emulator)",
            "aud": self.server,
            "sub": principal or "",
            "tenant": form.get("tenant") or tenant or self.emulator.config.tenant_id,
            "iat": now,
            "nbf": now,
            "exp": now + REFRESH_TOKEN_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        return Response(200, {"refresh_token": self.plane.tokens.issue(claims)}, dict(COMMON_HEADERS))

    def _token(self) -> Response:
        form = self._form()
        if form.get("grant_type") != "refresh_token":
            return _error(
                400, "UNSUPPORTED", f"The grant_type '{form.get('grant_type', '')}' is not supported."
            )
        if not self._service_matches(form.get("service", "")):
            return _error(
                401, "UNAUTHORIZED", f"The service '{form.get('service', '')}' is not this registry."
            )
        refresh = self.plane.tokens.verify(form.get("refresh_token", ""), "refresh", self.server)
        if refresh is None:
            return _error(401, "UNAUTHORIZED", "The refresh token is invalid or expired.")
        denied = self.store.denial(self.key, refresh.get("sub")) is not None
        access = []
        for text in form.get("scope", "").split():
            scope = Scope.parse(text)
            if scope is None or denied:
                continue  # the real service grants nothing it cannot grant: an empty `access` claim
            granted = [
                a for a in scope.actions if a in READ_ACTIONS or a in WRITE_ACTIONS or scope == CATALOG
            ]
            if granted:
                access.append({"type": scope.type, "name": scope.name, "actions": granted})
        now = int(time.time())
        claims = {
            "kind": "access",
            "iss": "Azure Container Registry (emulator)",
            "aud": self.server,
            "sub": refresh.get("sub", ""),
            "tenant": refresh.get("tenant"),
            "iat": now,
            "nbf": now,
            "exp": now + ACCESS_TOKEN_SECONDS,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        return Response(200, {"access_token": self.plane.tokens.issue(claims)}, dict(COMMON_HEADERS))

    # --- content (a consistent copy taken under the state lock)

    def _snapshot(self, repository: str) -> _Repo | None:
        registries = self.emulator.registries
        with self.emulator.state.lock:
            repo = registries.content(self.registry_id).get(repository)
            if repo is None:
                return None
            now = self.emulator.clock.now()
            tags = {
                tag: (digest, self.store.tag_time(self.key, repository, tag, now))
                for tag, digest in repo.tags.items()
            }
            manifests = {
                digest: (
                    self.store.document(digest),
                    self.store.manifest_time(self.key, repository, digest, now),
                )
                for digest in repo.manifests
            }
        return _Repo(repository, tags, manifests)

    def _repository_names(self) -> list[str]:
        with self.emulator.state.lock:
            return sorted(self.emulator.registries.content(self.registry_id))

    def _not_found_repository(self, repository: str) -> Response:
        return _error(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": repository})

    # --- routes

    def _page_size(self) -> int | Response:
        raw = self.request.query.get("n")
        if raw in (None, ""):
            return DEFAULT_PAGE_SIZE
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            return _error(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested", {"n": raw})
        return value

    def _page(
        self, path: str, names: list[str], ordered_by_name: bool, extra: dict[str, str], render: Any = None
    ) -> tuple[list[Any], dict[str, str]] | Response:
        """The page after `last` of `names` (in their order), each rendered; the Link header when more
        follow. An unknown `last` continues after it by name in name order, from the start otherwise."""
        size = self._page_size()
        if isinstance(size, Response):
            return size
        last = self.request.query.get("last") or None
        start = 0
        if last is not None:
            if last in names:
                start = names.index(last) + 1
            elif ordered_by_name:
                start = next((i for i, name in enumerate(names) if name > last), len(names))
        chosen = names[start : start + size]
        headers = dict(COMMON_HEADERS)
        if start + size < len(names) and chosen:
            query = {"last": chosen[-1], "n": str(size), **extra}
            headers["Link"] = f'<{path}?{urlencode(query, quote_via=quote)}>; rel="next"'
        return [render(name) if render else name for name in chosen], headers

    def _catalog(self, acr: bool) -> Response:
        names = self._repository_names()
        path = "/acr/v1/_catalog" if acr else "/v2/_catalog"
        paged = self._page(path, names, True, {})
        if isinstance(paged, Response):
            return paged
        page, headers = paged
        return Response(200, {"repositories": page}, headers)

    def _repository(self, repository: str) -> Response:
        repo = self._snapshot(repository)
        if repo is None:
            return self._not_found_repository(repository)
        times = [t for _, t in repo.manifests.values()] + [t for _, t in repo.tags.values()]
        body = {
            "registry": self.server,
            "imageName": repository,
            "createdTime": iso(min(t.created for t in times)) if times else None,
            "lastUpdateTime": iso(max(t.updated for t in times)) if times else None,
            "manifestCount": len(repo.manifests),
            "tagCount": len(repo.tags),
            "changeableAttributes": _changeable(),
        }
        return Response(200, body, dict(COMMON_HEADERS))

    def _order(self) -> str | Response | None:
        order = self.request.query.get("orderby") or None
        if order is not None and order not in ORDERS:
            return _error(400, "UNSUPPORTED", f"orderby must be one of {', '.join(ORDERS)}.")
        return order

    def _tags(self, repository: str, tag: str | None) -> Response:
        repo = self._snapshot(repository)
        if repo is None:
            return self._not_found_repository(repository)
        if tag is not None:
            if tag not in repo.tags:
                return _error(404, "TAG_UNKNOWN", "the specified tag does not exist", {"tag": tag})
            body = {"registry": self.server, "imageName": repository, "tag": repo.tag_body(tag)}
            return Response(200, body, dict(COMMON_HEADERS))
        order = self._order()
        if isinstance(order, Response):
            return order
        wanted = self.request.query.get("digest") or None
        names = [t for t in repo.tags if wanted is None or repo.tags[t][0] == wanted]
        names = _ordered(names, lambda t: repo.tags[t][1].updated, order)
        extra = {"orderby": order} if order else {}
        if wanted:
            extra["digest"] = wanted
        paged = self._page(f"/acr/v1/{quote(repository)}/_tags", names, order is None, extra, repo.tag_body)
        if isinstance(paged, Response):
            return paged
        page, headers = paged
        return Response(200, {"registry": self.server, "imageName": repository, "tags": page}, headers)

    def _manifests(self, repository: str, digest: str | None) -> Response:
        repo = self._snapshot(repository)
        if repo is None:
            return self._not_found_repository(repository)
        if digest is not None:
            if digest not in repo.manifests:
                return _error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"digest": digest})
            body = {"registry": self.server, "imageName": repository, "manifest": repo.manifest_body(digest)}
            return Response(200, body, dict(COMMON_HEADERS))
        order = self._order()
        if isinstance(order, Response):
            return order
        digests = _ordered(list(repo.manifests), lambda d: repo.manifests[d][1].updated, order)
        paged = self._page(
            f"/acr/v1/{quote(repository)}/_manifests",
            digests,
            order is None,
            {"orderby": order} if order else {},
            repo.manifest_body,
        )
        if isinstance(paged, Response):
            return paged
        page, headers = paged
        return Response(200, {"registry": self.server, "imageName": repository, "manifests": page}, headers)

    def _tag_names(self, repository: str) -> Response:
        repo = self._snapshot(repository)
        if repo is None:
            return self._not_found_repository(repository)
        names = sorted(repo.tags)
        paged = self._page(f"/v2/{quote(repository)}/tags/list", names, True, {})
        if isinstance(paged, Response):
            return paged
        page, headers = paged
        return Response(200, {"name": repository, "tags": page}, headers)

    def _manifest_document(self, repository: str, reference: str) -> Response:
        repo = self._snapshot(repository)
        if repo is None:
            return self._not_found_repository(repository)
        digest = reference if reference.startswith("sha256:") else (repo.tags.get(reference) or (None,))[0]
        if digest is None or digest not in repo.manifests:
            return _error(
                404,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
                {"Tag" if digest is None else "digest": reference},
            )
        manifest = repo.manifests[digest][0]
        if manifest is None:
            return _error(
                404,
                "MANIFEST_UNKNOWN",
                f"manifest unknown: the emulator holds no document for {digest} (a digest set through its "
                "admin API)",
                {"digest": digest},
            )
        headers = {
            **COMMON_HEADERS,
            "Content-Type": manifest.media_type,
            "Docker-Content-Digest": manifest.digest,
            "ETag": f'"{manifest.digest}"',
        }
        return Response(200, manifest.data, headers)


@dataclass
class _Repo:
    name: str
    tags: dict[str, tuple[str, Any]]  # tag -> (digest, Times)
    manifests: dict[str, tuple[Manifest | None, Any]]  # digest -> (document or None, Times)

    def tag_body(self, tag: str) -> dict[str, Any]:
        digest, times = self.tags[tag]
        return {
            "name": tag,
            "digest": digest,
            "createdTime": iso(times.created),
            "lastUpdateTime": iso(times.updated),
            "signed": False,
            "changeableAttributes": _changeable(),
        }

    def manifest_body(self, digest: str) -> dict[str, Any]:
        manifest, times = self.manifests[digest]
        body: dict[str, Any] = {
            "digest": digest,
            "imageSize": manifest.image_size if manifest else 0,
            "createdTime": iso(times.created),
            "lastUpdateTime": iso(times.updated),
        }
        if manifest is not None:
            body["architecture"] = manifest.architecture
            body["os"] = manifest.os
            body["mediaType"] = manifest.media_type
            config = None if manifest.is_index else (manifest.document.get("config") or {}).get("mediaType")
            if config:
                body["configMediaType"] = config
            if manifest.document.get("artifactType"):
                body["artifactType"] = manifest.document["artifactType"]
        body["tags"] = sorted(t for t, (d, _) in self.tags.items() if d == digest)
        body["changeableAttributes"] = {**_changeable(), "quarantineState": "Passed"}
        return body


def _changeable() -> dict[str, bool]:
    return {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True, "listEnabled": True}


def _covers(access: list[dict[str, Any]], scope: Scope) -> bool:
    for entry in access:
        if entry.get("type") == scope.type and entry.get("name") == scope.name:
            actions = entry.get("actions") or []
            if "*" in actions or all(a in actions for a in scope.actions):
                return True
    return False


def _ordered(names: list[str], updated: Any, order: str | None) -> list[str]:
    names = sorted(names)
    if order == "timedesc":
        return sorted(names, key=updated, reverse=True)
    if order == "timeasc":
        return sorted(names, key=updated)
    return names
