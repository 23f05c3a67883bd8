"""Index function_app.py the way the Functions host's Python worker does; run by .venv-host's Python 3.13.

Usage: python tests/host/index_app.py OUTPUT.json. Writes what the worker indexed as JSON and exits 0, or
writes {"error": ...} and exits 1. Sockets are blocked for the whole run: connecting, resolving a name or
sending a datagram is recorded (and raises), so the report tells whether importing the app used the network.

The worker (`azure-functions-runtime`, what the host loads for Python 3.13+) indexes in its init request:
`bindings.meta.load_binding_registry()`, then `loader.index_function_app(<app dir>/function_app.py)`
imports the module and collects the FunctionApp's functions, then `loader.process_indexed_function(protos,
registry, functions, <app dir>)` validates every function against its annotations (Registry), decides
per parameter whether it is an SDK-type (deferred) binding and builds the metadata sent to the host. The
`protos` module (the host's gRPC messages) belongs to the proxy worker shipped with the host, not to any
package here, so `Protos` below stands in for it: the same message and enum names, and it rejects fields
and value types that the real messages would reject.
"""

from __future__ import annotations

import json
import socket
import sys
import traceback
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[2]
NETWORK: list[str] = []


def _blocked(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        NETWORK.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
        raise ConnectionRefusedError(f"network use while indexing the app: {what}")

    return refuse


socket.socket.connect = _blocked("socket.connect")  # type: ignore[method-assign]
socket.socket.connect_ex = _blocked("socket.connect_ex")  # type: ignore[method-assign]
socket.socket.sendto = _blocked("socket.sendto")  # type: ignore[method-assign]
socket.getaddrinfo = _blocked("getaddrinfo")
socket.create_connection = _blocked("create_connection")


class _Message:
    """A protobuf message's constructor: known fields only, of the field's type; None leaves a field unset."""

    FIELDS: ClassVar[dict[str, type | tuple[type, ...]]] = {}

    def __init__(self, **fields: Any) -> None:
        for name, value in fields.items():
            if name not in self.FIELDS:
                raise ValueError(f'Protocol message {type(self).__name__} has no "{name}" field.')
            if value is not None and not isinstance(value, self.FIELDS[name]):
                raise TypeError(f"{type(self).__name__}.{name}: {value!r} is not {self.FIELDS[name]}")
        self.fields = {k: v for k, v in fields.items() if v is not None}


class BindingInfo(_Message):
    FIELDS: ClassVar[dict[str, type | tuple[type, ...]]] = {
        "type": str,
        "direction": int,
        "data_type": int,
        "properties": dict,
    }
    # enum Direction { in = 0; out = 1; inout = 2; }  enum DataType { undefined = 0; string = 1; ... }
    out = 1
    inout = 2
    undefined = 0
    string = 1
    binary = 2
    stream = 3


# `in` is a keyword, so the generated module sets it this way too.
setattr(BindingInfo, "in", 0)


class RpcRetryOptions(_Message):
    FIELDS: ClassVar[dict[str, type | tuple[type, ...]]] = {
        "max_retry_count": int,
        "delay_interval": object,
        "minimum_interval": object,
        "maximum_interval": object,
        "retry_strategy": (str, int),
    }


class RpcFunctionMetadata(_Message):
    FIELDS: ClassVar[dict[str, type | tuple[type, ...]]] = {
        "name": str,
        "directory": str,
        "script_file": str,
        "entry_point": str,
        "bindings": dict,
        "is_proxy": bool,
        "language": str,
        "raw_bindings": list,
        "function_id": str,
        "managed_dependency_enabled": bool,
        "retry_options": RpcRetryOptions,
        "properties": dict,
    }


class Protos:
    BindingInfo = BindingInfo
    RpcRetryOptions = RpcRetryOptions
    RpcFunctionMetadata = RpcFunctionMetadata


def index() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))  # the host appends the app directory to the worker's sys.path

    from azure_functions_runtime import loader
    from azure_functions_runtime.bindings import meta
    from azure_functions_runtime.functions import Registry

    meta.load_binding_registry()
    indexed = loader.index_function_app(str(ROOT / "function_app.py"))
    registry = Registry()
    metadata, bindings_logs = loader.process_indexed_function(Protos, registry, indexed, str(ROOT))

    functions = {}
    for fn, md in zip(indexed, metadata, strict=True):
        info = registry.get_function(md.fields["function_id"])
        assert info is not None
        logs = bindings_logs.get(fn) or {}
        fields = md.fields
        functions[fields["name"]] = {
            "script_file": fields["script_file"],
            "entry_point": fields["entry_point"],
            "directory": fields["directory"],
            "language": fields["language"],
            "properties": fields["properties"],
            "raw_bindings": [json.loads(raw) for raw in fields["raw_bindings"]],
            "bindings": {name: b.fields for name, b in fields["bindings"].items()},
            "deferred_bindings_enabled": info.deferred_bindings_enabled,
            "is_http_func": info.is_http_func,
            "input_types": {
                name: {
                    "binding": t.binding_name,
                    "pytype": f"{t.pytype.__module__}.{t.pytype.__qualname__}" if t.pytype else None,
                    "deferred": bool(t.deferred_bindings_enabled),
                }
                for name, t in info.input_types.items()
            },
            # As the worker logs it at indexing: (binding type, name, deferred-binding info or "").
            "binding_summary": [
                [b.type, b.name, {str(k): str(v) for k, v in logs[b.name].items()} if b.name in logs else ""]
                for b in fn.get_bindings()
            ],
        }

    import azure.functions
    from azure_functions_runtime.version import VERSION

    return {
        "python": sys.version.split()[0],
        "azure_functions": azure.functions.__version__,
        "azure_functions_runtime": VERSION,
        "app_deferred_bindings_enabled": registry.deferred_bindings_enabled(),
        "functions": functions,
        "management_sdks_loaded": sorted(
            m for m in sys.modules if m.startswith(("azure.mgmt", "azure.data", "azure.keyvault"))
        ),
    }


def main() -> int:
    out = Path(sys.argv[1])
    try:
        report = index()
    except Exception as exc:
        report = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    report["network"] = NETWORK
    out.write_text(json.dumps(report, indent=2, sort_keys=True))
    return 1 if "error" in report else 0


if __name__ == "__main__":
    sys.exit(main())
