"""Which methods each path answers, for the ``Allow`` header of a 405 and of ``OPTIONS``.

Starlette's own 405 names only the methods of the first route matching the path, so a path served
by several routes (``GET`` and ``DELETE`` of one media) advertised one of them. The table is built
from the routers as they are included, once, when the app is created.
"""

from __future__ import annotations

import re

from fastapi import APIRouter
from starlette.routing import Route, compile_path


class AllowedMethods:
    def __init__(self) -> None:
        self._paths: list[tuple[re.Pattern[str], bool, frozenset[str]]] = []  # pattern, has parameters, methods

    def add(self, router: APIRouter, prefix: str = "") -> None:
        """The router's own routes (those of routers included into it are added with theirs)."""
        for route in router.routes:
            if isinstance(route, Route) and route.methods:  # FastAPI's APIRoute is a Route too
                pattern, _format, converters = compile_path(prefix + route.path)
                self._paths.append((pattern, bool(converters), frozenset(route.methods)))

    def for_path(self, path: str) -> list[str]:
        """The methods of the resource at ``path``, and ``OPTIONS``, sorted. A literal path
        (``/media/redact``) is its own resource, though ``/media/{media_id}`` matches it too."""
        matching = [(parametrised, methods) for pattern, parametrised, methods in self._paths if pattern.match(path)]
        literal = [methods for parametrised, methods in matching if not parametrised]
        chosen = literal or [methods for _, methods in matching]
        return sorted(set().union({"OPTIONS"}, *chosen))
