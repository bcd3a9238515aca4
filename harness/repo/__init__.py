"""The repository lane: a gateway team's own tests and coverage (work in progress; API below once complete)."""
