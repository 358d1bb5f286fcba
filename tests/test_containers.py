"""Static checks of the container recipes (no Docker needed; .ci/containers.sh builds and runs them for real).

tests/test_nextflow.py already checks image names against build.sh and the torch pin in pip lines; these
check what a build would only reveal late: which Python packages each role really gets, that the build
context keeps every file a Dockerfile uses, that no base image or frontend needs a private registry, and
that the CA bundle is never baked into a layer.
"""
import fnmatch
import importlib.util
import re
import shlex
import subprocess
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="needs Python >= 3.11 (tomllib), as the images have")

REPO = Path(__file__).resolve().parents[1]
CONTAINERS = REPO / "containers"
CPU_ROLES = ["align", "peaks", "tracks", "infer", "qc", "registry"]
ALL_ROLES = CPU_ROLES + ["train-gpu"]


def dockerfile(role: str) -> str:
    return (CONTAINERS / role / "Dockerfile").read_text()


def load_requirements_module():
    spec = importlib.util.spec_from_file_location("container_requirements", CONTAINERS / "requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def role_packages(role: str) -> set[str]:
    """The package names the role's Dockerfile installs, by running its requirements.py call."""
    text = dockerfile(role)
    calls = re.findall(r"requirements\.py /tmp/pyproject\.toml([^)]*)\)", text)
    if not calls:  # no dependency step: the package alone (pip install --no-deps)
        assert "pip install --no-deps -e ." in text
        return set()
    module = load_requirements_module()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = set()
    for call in calls:
        options = shlex.split(call)
        pairs = list(zip(options[::2], options[1::2]))
        assert len(options) % 2 == 0 and {k for k, _ in pairs} <= {"--extra", "--only", "--without"}, options
        chosen = {key: [value for k, value in pairs if k == key] for key in ("--extra", "--only", "--without")}
        requirements = module.role_requirements(project, chosen["--extra"], chosen["--only"], chosen["--without"])
        names |= {module.requirement_name(r) for r in requirements}
    return names


def test_each_role_gets_only_the_python_packages_its_commands_need():
    packages = {role: role_packages(role) for role in CPU_ROLES}
    assert all("torch" not in names for names in packages.values())
    # MACS3 compiles from source: only the peaks image (CALL_PEAKS) carries it and a compiler.
    assert [role for role in CPU_ROLES if "macs3" in packages[role]] == ["peaks"]
    assert [role for role in CPU_ROLES if re.search(r"\bgcc\b", dockerfile(role))] == ["peaks"]
    # infer is DENOISE alone: exactly what `atacdenoise denoise` imports (no MLflow, plotting or MultiQC).
    assert packages["infer"] == {"numpy", "pysam", "pybigwig", "pybigtools", "tqdm", "onnxruntime"}
    assert {"numpy", "scipy", "pysam", "pybigwig", "tqdm"} <= packages["tracks"]
    assert {"pysam", "pybigwig", "pybigtools"} <= packages["peaks"]  # pybigtools: the peaks' bigBed
    assert {"matplotlib", "markdown", "jinja2", "multiqc", "pysam", "pybigwig"} <= packages["qc"]
    assert {"mlflow", "onnx", "onnxruntime", "boto3"} <= packages["registry"]
    assert "onnxruntime" not in packages["peaks"] | packages["tracks"] | packages["align"] | packages["qc"]
    assert [role for role in CPU_ROLES if "multiqc" in packages[role]] == ["qc"]


def test_requirements_helper_rejects_names_pyproject_does_not_have():
    module = load_requirements_module()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    with pytest.raises(SystemExit, match="macs4"):
        module.role_requirements(project, [], [], ["macs4"])
    with pytest.raises(SystemExit, match="gpu"):
        module.role_requirements(project, ["gpu"], [], [])
    # versions come along unchanged from pyproject.toml
    assert module.role_requirements(project, [], ["numpy"], []) == [
        r for r in project["dependencies"] if module.requirement_name(r) == "numpy"]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes; a folder's pattern covers its files."""
    verdict = False
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        if any(fnmatch.fnmatchcase(p, pattern) or fnmatch.fnmatchcase(p, pattern.replace("**/", ""))
               for p in prefixes):
            verdict = not negate
    return verdict


@pytest.mark.parametrize("role", ALL_ROLES)
def test_build_context_keeps_every_file_the_dockerfile_uses(role):
    text = dockerfile(role)
    sources = [line.split()[1] for line in re.findall(r"^COPY (?!--from)[^\n]+", text, flags=re.M)]
    sources += re.findall(r"--mount=type=bind,source=([^,\s]+)", text)
    assert sources, "no COPY in the Dockerfile?"
    ignore = (CONTAINERS / role / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in ignore if p.strip() and not p.startswith("#")]
    assert ignored("benchmarks/out/big.npz", patterns) and ignored(".git/HEAD", patterns)
    for source in sources:
        assert (REPO / source).exists(), f"{role}: {source} does not exist"
        assert not ignored(source, patterns), f"{role}: {source} is excluded from the build context"


@pytest.mark.parametrize("role", ALL_ROLES)
def test_no_registry_is_needed_beyond_the_public_base_and_no_ca_bundle_is_baked_in(role):
    text = dockerfile(role)
    # A '# syntax=' line makes BuildKit pull a frontend image; the built-in frontend has all we use.
    assert not re.search(r"^#\s*syntax=", text, flags=re.M)
    default = re.search(r"^ARG BASE_IMAGE=(\S+)", text, flags=re.M).group(1)
    assert "atacdenoise" not in default and "localhost" not in default and "example" not in default
    if role in CPU_ROLES:
        assert default == "debian:bookworm-slim"  # the CI base (debootstrap bookworm) is a drop-in for it
    assert not re.search(r"^(COPY|ADD)\b.*\.(crt|pem)\b", text, flags=re.M)
    assert not re.search(r"^ENV\b.*(PIP_CERT|REQUESTS_CA_BUNDLE|SSL_CERT_FILE)", text, flags=re.M)
    for run in re.findall(r"^RUN [^\n]*(?:\\\n[^\n]*)*", text, flags=re.M):
        if "pip install" in run:
            assert "--mount=type=secret,id=ca_bundle" in run, "each pip step gets the CA bundle as a secret"


def test_build_sh_passes_base_image_and_ca_bundle_only_when_asked(tmp_path):
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")

    def dry_run(*args):
        return subprocess.run(["bash", str(CONTAINERS / "build.sh"), "--dry-run", *args],
                              capture_output=True, text=True)

    plain = dry_run("--role", "infer")
    assert plain.returncode == 0 and plain.stdout.count("docker build") == 1
    assert "--secret" not in plain.stdout and "BASE_IMAGE" not in plain.stdout
    asked = dry_run("--role", "peaks", "--base-image", "atacdenoise-base:bookworm", "--ca-bundle", str(bundle))
    assert "--build-arg BASE_IMAGE=atacdenoise-base:bookworm" in asked.stdout
    assert f"--secret id=ca_bundle,src={bundle}" in asked.stdout
    assert dry_run("--role", "gpu").returncode == 2
    assert dry_run("--ca-bundle", str(tmp_path / "missing.crt")).returncode == 2


def test_ci_script_parses():
    assert subprocess.run(["bash", "-n", str(REPO / ".ci" / "containers.sh")]).returncode == 0
