"""Importers: the configs of other tools turned into a harness.yaml and its config template."""
