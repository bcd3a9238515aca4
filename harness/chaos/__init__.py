"""Network chaos: a fault proxy speaking the Toxiproxy v2 HTTP API, and the scenarios that use it."""
