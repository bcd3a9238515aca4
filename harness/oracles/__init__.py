"""Oracles: pure functions from what a gateway returned to a list of violations ([] = conforming).

They never do I/O, so hypothesis can feed them valid and broken payloads directly. Each
violation is one sentence naming the offending field and value.
"""
