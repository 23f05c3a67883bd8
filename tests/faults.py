"""Fault hooks: how a test makes a port misbehave without assigning its methods.

- `port.fail(method, error, times=1)`: the next calls raise `error` (the fakes before they do anything).
- `port.around(method, hook)`: every call of `method` goes to `hook(call, *args, **kwargs)`, which may
  delay, count, change or refuse it and calls `call(*args, **kwargs)` for the real thing;
  `port.around(method, None)` removes it.

The fakes of tests/fakes.py have both; `Faulty(adapter)` gives them to a real adapter (the integration
tests wrap the ports a side is built with: `scenario.Side(..., ports=...)`).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from functools import partial
from typing import Any

Hook = Callable[..., Any]


class Hooks:
    """`around` for the public methods of the class it is mixed into."""

    _hooks: dict[str, Hook]

    def around(self, method: str, hook: Hook | None) -> None:
        if not callable(getattr(self, method, None)):
            raise AttributeError(f"{type(self).__name__} has no method {method}")
        hooks = self.__dict__.setdefault("_hooks", {})
        if hook is None:
            hooks.pop(method, None)
        else:
            hooks[method] = hook

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name.startswith("_"):
            return value
        hook = object.__getattribute__(self, "__dict__").get("_hooks", {}).get(name)
        return partial(hook, value) if hook is not None else value


class Faulty(Hooks):
    """A real adapter with fault hooks: every attribute is the adapter's, each hooked method goes through
    its hook, and `fail` queues errors raised before the adapter is called."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter
        self._faults: dict[str, deque[BaseException]] = defaultdict(deque)

    def __repr__(self) -> str:
        return f"Faulty({self._adapter!r})"

    def fail(self, method: str, error: BaseException, times: int = 1) -> None:
        self._faults[method].extend([error] * times)
        faults = self._faults

        def raising(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            queue = faults.get(method)
            if queue:
                raise queue.popleft()
            return call(*args, **kwargs)

        self.around(method, raising)

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or name in ("fail", "around"):
            return object.__getattribute__(self, name)
        value = getattr(object.__getattribute__(self, "_adapter"), name)
        hook = object.__getattribute__(self, "__dict__").get("_hooks", {}).get(name)
        return partial(hook, value) if hook is not None else value


def instead(replacement: Callable[..., Any]) -> Hook:
    """A hook that answers every call with `replacement(*args, **kwargs)`, never calling the port."""
    return lambda _call, *args, **kwargs: replacement(*args, **kwargs)
