"""llm-gateway-harness: conformance, chaos, load and smoke testing for LLM API gateways."""

__version__ = "0.1.0"
