"""Print the requirements of an image: the project's dependencies plus its extras', one a line.

    python3 docker/requirements.py pyproject.toml tensorflow,mpi    # extras, comma-separated
    python3 docker/requirements.py pyproject.toml --build-system   # what building the package needs

Used twice, so that the two never disagree: by Dockerfile.cpu/.gpu (a stage of its own, so that
the framework's install layer stays cached while only the package's code changes) and by
docker/build.sh (the wheelhouse it prepares on the host). Python 3.11's tomllib; no other import.
"""

import sys
import tomllib


def requirements(pyproject: str, names: str) -> list[str]:
    """The core dependencies and those of every extra in ``names`` (comma-separated), in order."""
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    extras = project.get("optional-dependencies", {})
    wanted = names.split(",")
    for extra in wanted:
        if extra not in extras:
            raise SystemExit(f"unknown extra {extra!r} (FRAMEWORK): pyproject.toml defines {', '.join(sorted(extras))}")
    return [*project.get("dependencies", []), *(line for extra in wanted for line in extras[extra])]


def build_requirements(pyproject: str) -> list[str]:
    with open(pyproject, "rb") as f:
        return list(tomllib.load(f)["build-system"]["requires"])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise SystemExit("usage: requirements.py PYPROJECT EXTRA[,EXTRA...]|--build-system")
    pyproject, extra = argv
    print("\n".join(build_requirements(pyproject) if extra == "--build-system" else requirements(pyproject, extra)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
