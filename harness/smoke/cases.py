"""What a smoke cell sends besides route x client protocol x streaming: the one place to add a
dimension. Each case names itself (the cell id's suffix: SMOKE-<route>/<protocol>/<mode>/<case>),
its prompt, its record's claim, the tools it offers and what the provider's route must be able to
carry for the cell to be judged there (a mock route's `can`). `text` is the plain smoke cell;
which routes get the other cases is the matrix's `tools:`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Two tools with distinct names and arguments of several JSON types (a string, an integer, an enum,
# a boolean): what a translation can lose or retype. The mock calls every tool it is offered, in order.
WEATHER = {"name": "get_weather", "description": "The weather in a city for the next days.",
           "parameters": {"type": "object", "properties": {
               "city": {"type": "string", "description": "the city's name"},
               "days": {"type": "integer", "description": "how many days ahead"},
               "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}
CLOCK = {"name": "get_time", "description": "The local time in a time zone.",
         "parameters": {"type": "object", "properties": {
             "timezone": {"type": "string", "description": "an IANA time zone"},
             "precise": {"type": "boolean", "description": "with seconds"}}, "required": ["timezone"]}}

# What a provider route without a capability cannot carry (journal entries' route_can).
CAN_SAY = {"tools": "tool calls", "parallel_tools": "parallel tool calls"}


@dataclass(frozen=True)
class Case:
    name: str
    prompt: str                                  # {tag}: the harness tag that finds the journal entry
    claim: str                                   # {row}, {mode}, {protocol}: the record's claim
    tools: tuple[dict[str, Any], ...] = ()
    needs: frozenset[str] = frozenset()          # capabilities (CAN_SAY) the provider's route must offer

    @property
    def suffix(self) -> str:
        return "" if self.name == "text" else f"/{self.name}"


CASES = {c.name: c for c in (
    Case("text", "Say something short for the route check. [h:{tag}]",
         "{row} answers a {mode} {protocol} request through the gateway"),
    Case("tools", "Call the tool for the route check. [h:{tag}]",
         "{row} carries a tool call through a {mode} {protocol} request: name, arguments, finish reason and usage "
         "as the provider wrote them", (WEATHER,), frozenset({"tools"})),
    Case("parallel_tools", "Call both tools at once for the route check. [h:{tag}]",
         "{row} carries two parallel tool calls through a {mode} {protocol} request: distinct indexes and ids, names, "
         "arguments, finish reason and usage as the provider wrote them", (WEATHER, CLOCK),
         frozenset({"tools", "parallel_tools"})),
)}
