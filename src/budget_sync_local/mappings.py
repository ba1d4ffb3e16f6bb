"""Lambda's DynamoDB event source mappings of template-management.yaml, as local pollers.

A function's ``Events`` of type DynamoDB give each mapping's settings (batch size, retries,
starting position, FilterCriteria); ``filtered`` is Lambda's event filtering in front of the
function, and ``Pollers`` makes a set of ``StreamPoller`` one source of work for the
pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from budget_sync_local.management_stack import StreamSettings
from budget_sync_local.pipeline import Observer, Step, StreamPoller
from budget_sync_local.standins import pattern_matches
from budget_sync_local.templates import MANAGEMENT_TEMPLATE, Resolver, load


@dataclass(frozen=True)
class MappingSpec:
    name: str
    settings: StreamSettings
    filters: tuple[Mapping[str, Any], ...]


def stream_mappings(
    function_logical_id: str, parameters: Mapping[str, str], region: str, account: str
) -> dict[str, MappingSpec]:
    """The function's DynamoDB event sources, as the template sets them, by event name."""
    resolver = Resolver(load(MANAGEMENT_TEMPLATE), parameters, account_id=account, region=region)
    raw = resolver.resource(function_logical_id).get("Properties", {}).get("Events", {})
    events = resolver.resolve(raw)
    mappings: dict[str, MappingSpec] = {}
    for name, event in events.items():
        if event["Type"] != "DynamoDB":
            continue
        source = event["Properties"]
        settings = StreamSettings.of(source)
        filters = tuple(json.loads(f["Pattern"]) for f in source.get("FilterCriteria", {}).get("Filters", []))
        mappings[name] = MappingSpec(name, settings, filters)
    return mappings


def filtered(
    invoke: Callable[[dict[str, Any]], Any],
    mapping: MappingSpec,
    after: Callable[[list[dict[str, Any]], Any], None],
) -> Callable[[dict[str, Any]], Any]:
    """Lambda's event filtering: only records matching one of the mapping's patterns reach
    the function; a batch with none left is not an invocation. ``after`` sees each batch
    the function was given and its answer."""

    def call(event: dict[str, Any]) -> Any:
        records = [
            r
            for r in event.get("Records", [])
            if not mapping.filters or any(pattern_matches(f, r) for f in mapping.filters)
        ]
        if not records:
            return None
        result = invoke({"Records": records})
        after(records, result)
        return result

    return call


def without_batches(observer: Observer) -> Observer:
    """For pollers whose batches ``filtered`` reports: not shown as the update function's."""

    def observe(step: Step) -> None:
        if step.kind != "batch":
            observer(step)

    return observe


class Pollers:
    """Stream pollers as one source of work for ``Pipeline`` (``add_source``)."""

    def __init__(self, pollers: Sequence[StreamPoller]) -> None:
        self.pollers = list(pollers)

    def step(self) -> int:
        return sum(poller.poll() for poller in self.pollers)

    def idle(self) -> bool:
        return all(poller.idle() for poller in self.pollers)
