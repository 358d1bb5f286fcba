"""Print the pip requirements one image role needs, read from pyproject.toml (one place for versions).

    python3 requirements.py pyproject.toml --extra infer --without macs3
    python3 requirements.py pyproject.toml --only numpy --only pysam

The images install the package with ``pip install --no-deps`` and these requirements beside it (one a line:
containers/Dockerfile keeps them as the role's requirements.txt), so a
role gets only what its commands import: MACS3 (compiled from source, no wheel) stays in `peaks`,
onnxruntime in `infer`. Runs on the image's own python3 (3.11 on bookworm: tomllib is built in).
"""
import argparse
import re
import tomllib


def requirement_name(requirement: str) -> str:
    """'pyBigWig>=0.3.22' -> 'pybigwig' (PEP 503 normalised, for comparing names)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def role_requirements(project: dict, extras: list[str], only: list[str], without: list[str]) -> list[str]:
    core = project["dependencies"]
    wanted = {requirement_name(n) for n in only}
    dropped = {requirement_name(n) for n in without}
    unknown = (wanted | dropped) - {requirement_name(r) for r in core}
    if unknown:
        raise SystemExit(f"requirements.py: not a core dependency in pyproject.toml: {sorted(unknown)}")
    chosen = [r for r in core if (not wanted or requirement_name(r) in wanted)
              and requirement_name(r) not in dropped]
    for extra in extras:
        if extra not in project["optional-dependencies"]:
            raise SystemExit(f"requirements.py: no extra [{extra}] in pyproject.toml")
        chosen += project["optional-dependencies"][extra]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pyproject")
    parser.add_argument("--extra", action="append", default=[], help="add this optional-dependencies group")
    parser.add_argument("--only", action="append", default=[], help="keep only these core dependencies")
    parser.add_argument("--without", action="append", default=[], help="leave out this core dependency")
    args = parser.parse_args()
    with open(args.pyproject, "rb") as handle:
        project = tomllib.load(handle)["project"]
    print("\n".join(role_requirements(project, args.extra, args.only, args.without)))  # a requirements file


if __name__ == "__main__":
    main()
