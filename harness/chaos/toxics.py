"""Toxics: what a fault proxy does to the bytes of one direction of one connection.

Attribute names and meanings follow Toxiproxy (times in ms unless named otherwise, `slicer.delay`
in microseconds, bandwidth `rate` in KB/s of 1000 bytes). `packet_loss` is ours: Toxiproxy has no
such toxic; on a TCP stream it drops whole reads, which corrupts the stream on purpose.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STREAMS = ("upstream", "downstream")

# type -> attribute defaults (the set of known attributes, too)
TYPES: dict[str, dict[str, float]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "packet_loss": {"probability": 0},
}


class ToxicError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Toxic:
    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> "Toxic":
        if not isinstance(data, dict):
            raise ToxicError("bad request body: a toxic is a JSON object")
        kind = data.get("type")
        if kind not in TYPES:
            raise ToxicError("invalid toxic type")
        stream = data.get("stream") or "downstream"
        if stream not in STREAMS:
            raise ToxicError("stream was invalid, can be either upstream or downstream")
        toxic = cls(name=data.get("name") or f"{kind}_{stream}", type=kind, stream=stream,
                    toxicity=_toxicity(data.get("toxicity", 1.0)), attributes=dict(TYPES[kind]))
        toxic.update_attributes(data.get("attributes") or {})
        return toxic

    def update(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise ToxicError("bad request body: a toxic is a JSON object")
        if "toxicity" in data:
            self.toxicity = _toxicity(data["toxicity"])
        self.update_attributes(data.get("attributes") or {})

    def update_attributes(self, attrs: Any) -> None:
        if not isinstance(attrs, dict):
            raise ToxicError("bad request body: attributes must be an object")
        for key, value in attrs.items():
            if key not in TYPES[self.type]:
                continue   # Toxiproxy ignores attributes a toxic does not have
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ToxicError(f"bad request body: attribute {key} must be a non-negative number")
            self.attributes[key] = value

    def to_json(self) -> dict[str, Any]:
        attrs = {k: (int(v) if float(v).is_integer() else v) for k, v in self.attributes.items()}
        return {"name": self.name, "type": self.type, "stream": self.stream, "toxicity": self.toxicity,
                "attributes": attrs}


def _toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ToxicError("bad request body: toxicity must be a number between 0 and 1")
    return float(value)
