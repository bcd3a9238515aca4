"""Mock upstream providers: stand-ins for OpenAI- and Anthropic-style APIs, never for the gateway.

Each provider listens on its own loopback port, answers deterministically, obeys a fault script set
by the harness, and keeps a journal of every request the gateway sent it.
"""
