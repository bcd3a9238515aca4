"""The tests a repository had at a git ref, read from git's objects (nothing is checked out), so
the lane matrix can count what was added since."""
from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path, PurePosixPath

from harness.config import ConfigError
from harness.repo import proc
from harness.repo.files import GO_TESTS, PY_TESTS, SKIP_DIRS
from harness.repo.model import TestItem
from harness.repo.static_go import import_path, scan_go
from harness.repo.static_py import scan_python

GIT_TIMEOUT_S = 60.0


def tests_at(repo: Path, ref: str, timeout_s: float = GIT_TIMEOUT_S) -> list[TestItem]:
    """Every test the source at `ref` defines (below `repo`, which may be a subdirectory of the
    checkout). A ref that is not a commit is a ConfigError."""
    repo = Path(repo).resolve()
    check = proc.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo, timeout_s)
    if check.returncode != 0:
        raise ConfigError(f"{repo}: git ref {ref!r}: not a commit of this repository")
    prefix = proc.run(["git", "rev-parse", "--show-prefix"], repo, timeout_s).stdout.strip()
    listed = proc.run(["git", "ls-tree", "-r", "--name-only", "--full-tree", ref], repo, timeout_s)
    if listed.returncode != 0:
        raise proc.RepoRunError(f"git ls-tree {ref} in {repo}: {proc.tail(listed.stderr)}")
    rels = [p[len(prefix):] for p in listed.stdout.splitlines() if p.startswith(prefix)]
    rels = [r for r in rels if _wanted(r, PY_TESTS + GO_TESTS)]
    texts = _read(repo, ref, [prefix + r for r in rels], timeout_s)
    items: list[TestItem] = []
    for rel, text in zip(rels, texts):
        if rel.endswith(".go"):
            items += scan_go(rel, text, import_path(repo, rel))
        else:
            items += scan_python(rel, text)
    return items


def _wanted(rel: str, patterns: tuple[str, ...]) -> bool:
    parts = PurePosixPath(rel).parts
    if any(p in SKIP_DIRS or p.startswith(".") for p in parts[:-1]):
        return False
    return any(fnmatch.fnmatch(parts[-1], p) for p in patterns)


def _read(repo: Path, ref: str, paths: list[str], timeout_s: float) -> list[str]:
    """The files' contents in one `git cat-file --batch` (one process, not one per file)."""
    if not paths:
        return []
    request = "".join(f"{ref}:{p}\n" for p in paths).encode()
    try:
        out = subprocess.run(["git", "cat-file", "--batch"], cwd=repo, input=request, capture_output=True,
                             timeout=timeout_s, check=True).stdout
    except subprocess.TimeoutExpired:
        raise proc.RepoRunError(f"git cat-file in {repo}: did not finish within {timeout_s:g} s") from None
    except subprocess.CalledProcessError as exc:
        raise proc.RepoRunError(f"git cat-file in {repo}: {exc.stderr.decode(errors='replace')[-500:]}") from None
    texts, pos = [], 0
    for _ in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        if len(header) < 3 or header[1] != b"blob":
            texts.append("")           # missing (a submodule, say): defines no test
            pos = end + 1
            continue
        size = int(header[2])
        texts.append(out[end + 1:end + 1 + size].decode(errors="replace"))
        pos = end + 1 + size + 1
    return texts
