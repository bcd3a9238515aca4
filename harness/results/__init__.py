"""The one results stream: every lane emits `Record`s into it; every output reads it.

record.py  the verdict record and its status enum
stream.py  results.jsonl: appended and flushed as each verdict is reached, read back whole or partial
select.py  the one selection rule (--only, --lane, -k) every lane obeys
"""
