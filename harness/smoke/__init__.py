"""The provider smoke matrix: every route through the gateway (providers x models x protocols x
streaming), each cell a real request checked against what the provider saw."""
