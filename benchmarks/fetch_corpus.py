"""Rebuild the corpus of ordinary model files written by others (not committed: not ours).

    .venv/bin/python benchmarks/fetch_corpus.py DEST [--list benchmarks/others_corpus.txt]
        [--mirror TEMPLATE]

Writes each file of the list to `DEST/<owner>+<name>/<path>` at the listed commit. Each
repository is read from a local git directory when `--mirror` names one (a template with
`{owner}` and `{name}`, e.g. `/work/.mirror/{owner}+{name}/repo`), else cloned from GitHub
(`git clone --filter=blob:none`, needs the network) into a temporary folder. Then:

    .venv/bin/python benchmarks/review.py --corpus DEST
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read_list(path: Path) -> dict[tuple[str, str], list[str]]:
    """(repository, commit) -> paths, from `owner/name commit path` lines (# comments)."""
    wanted: dict[tuple[str, str], list[str]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            repo, commit, file = line.split(maxsplit=2)
            wanted[(repo, commit)].append(file)
    return wanted


def git_dir(repo: str, mirror: str | None, scratch: Path) -> Path:
    owner, name = repo.split("/")
    if mirror:
        return Path(mirror.format(owner=owner, name=name))
    target = scratch / f"{owner}+{name}"
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", "--filter=blob:none", f"https://github.com/{repo}", str(target)],
        check=True,
    )
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--list", type=Path, default=ROOT / "benchmarks" / "others_corpus.txt")
    parser.add_argument("--mirror", help="local git directory per repository: a template with {owner} and {name}")
    args = parser.parse_args()
    count = 0
    with tempfile.TemporaryDirectory() as scratch:
        for (repo, commit), files in read_list(args.list).items():
            where = git_dir(repo, args.mirror, Path(scratch))
            for file in files:
                text = subprocess.run(
                    ["git", "-C", str(where), "show", f"{commit}:{file}"], check=True, capture_output=True
                ).stdout
                out = args.dest / repo.replace("/", "+") / file
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(text)
                count += 1
    print(f"{count} files under {args.dest}")


if __name__ == "__main__":
    main()
