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
CPU_DOCKERFILE = CONTAINERS / "Dockerfile"  # one recipe for the CPU roles; build.sh passes each role's build args
DOCKERFILES = [CPU_DOCKERFILE, CONTAINERS / "train-gpu" / "Dockerfile"]


def build_command(role: str) -> list[str]:
    """The docker build command build.sh would run for the role (its dry run prints it shell-quoted)."""
    out = subprocess.run(["bash", str(CONTAINERS / "build.sh"), "--dry-run", "--role", role],
                         capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if line.startswith("+ DOCKER_BUILDKIT=1 ")]
    assert len(lines) == 1, out
    return shlex.split(lines[0])[2:]


def build_args(role: str) -> dict[str, str]:
    command = build_command(role)
    pairs = [command[i + 1] for i, word in enumerate(command) if word == "--build-arg"]
    return dict(pair.split("=", 1) for pair in pairs)


def stages(text: str) -> dict[str, tuple[str, str]]:
    """Each build stage of a Dockerfile: name (the last one: '') -> (what it is FROM, its lines but comments)."""
    found = {}
    for block in re.split(r"^(?=FROM )", re.sub(r"^#.*\n", "", text, flags=re.M), flags=re.M)[1:]:
        head = re.match(r"FROM (\S+)(?: AS (\S+))?", block)
        found[head.group(2) or ""] = (head.group(1), block)
    return found


def load_requirements_module():
    spec = importlib.util.spec_from_file_location("container_requirements", CONTAINERS / "requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def role_packages(role: str) -> set[str]:
    """The package names the role's image installs, by running requirements.py as the Dockerfile does."""
    options = shlex.split(build_args(role).get("PYTHON_DEPENDENCIES", ""))
    if not options:  # no dependencies: the package alone (pip install --no-deps)
        return set()
    pairs = list(zip(options[::2], options[1::2]))
    assert len(options) % 2 == 0 and {k for k, _ in pairs} <= {"--extra", "--only", "--without"}, options
    chosen = {key: [value for k, value in pairs if k == key] for key in ("--extra", "--only", "--without")}
    module = load_requirements_module()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = module.role_requirements(project, chosen["--extra"], chosen["--only"], chosen["--without"])
    return {module.requirement_name(r) for r in requirements}


def test_each_role_gets_only_the_python_packages_its_commands_need():
    packages = {role: role_packages(role) for role in CPU_ROLES}
    assert all("torch" not in names for names in packages.values())
    assert packages["align"] == set()  # bowtie2, samtools and cutadapt only
    # MACS3 compiles from source: only the peaks image (CALL_PEAKS) carries it, and only its build gets a compiler.
    assert [role for role in CPU_ROLES if "macs3" in packages[role]] == ["peaks"]
    assert [role for role in CPU_ROLES if "gcc" in build_args(role).get("BUILD_PACKAGES", "").split()] == ["peaks"]
    # infer is DENOISE alone: exactly what `atacdenoise denoise` imports (no MLflow, plotting or MultiQC).
    # onnx: denoise rewrites the model's graph at load (denoise/fast_graph.py); isal compresses the bigWigs.
    assert packages["infer"] == {"numpy", "pysam", "pybigwig", "pybigtools", "isal", "tqdm", "onnxruntime", "onnx"}
    assert {"numpy", "scipy", "pysam", "pybigwig", "isal", "tqdm"} <= packages["tracks"]  # bin writes a bigWig
    assert {"pysam", "pybigwig", "pybigtools"} <= packages["peaks"]  # pybigtools: the peaks' bigBed
    assert {"matplotlib", "markdown", "jinja2", "multiqc", "pysam", "pybigwig", "isal"} <= packages["qc"]
    assert {"mlflow", "onnx", "onnxruntime", "boto3"} <= packages["registry"]
    assert not {"onnx", "onnxruntime"} & (packages["peaks"] | packages["tracks"] | packages["align"] | packages["qc"])
    assert [role for role in CPU_ROLES if "multiqc" in packages[role]] == ["qc"]


def test_each_role_gets_its_debian_tools_bundled_files_and_import_guard():
    args = {role: build_args(role) for role in CPU_ROLES}
    assert set(args["align"]["APT_PACKAGES"].split()) == {"bowtie2", "samtools", "cutadapt"}
    assert set(args["peaks"]["APT_PACKAGES"].split()) == {"samtools", "tabix"}
    assert [role for role in CPU_ROLES if "APT_PACKAGES" in args[role]] == ["align", "peaks"]
    # infer: denoise's default model; qc: the report's model card; registry: serve.sh too.
    assert {role: args[role].get("BUNDLED", "none") for role in CPU_ROLES} == {
        "align": "none", "peaks": "none", "tracks": "none", "infer": "models", "qc": "models", "registry": "all"}
    default_absent = re.search(r"^ARG ABSENT_MODULES=(\S+)", CPU_DOCKERFILE.read_text(), flags=re.M).group(1)
    absent = {role: set(args[role].get("ABSENT_MODULES", default_absent).split()) for role in CPU_ROLES}
    assert all("torch" in modules for modules in absent.values())  # torch belongs in train-gpu only
    assert {"mlflow", "matplotlib"} <= absent["infer"]


def test_cpu_dockerfile_declares_every_build_arg_and_keeps_build_tools_out_of_the_image():
    text = CPU_DOCKERFILE.read_text()
    declared = set(re.findall(r"^ARG (\w+)", text, flags=re.M))
    for role in CPU_ROLES:  # docker build only warns about an unknown --build-arg: a typo would pass silently
        assert set(build_args(role)) <= declared, role
    by_name = stages(text)
    for bundled in {build_args(role).get("BUNDLED", "none") for role in CPU_ROLES}:
        assert f"bundled-{bundled}" in by_name
    assert by_name[""][0] == "bundled-${BUNDLED}"
    # The final image's ancestry: never the wheels stage (compilers); wheels reach it only as a bind mount.
    chain = {name: base for name, (base, _) in by_name.items()}
    for bundled in ("none", "models", "all"):
        stage = f"bundled-{bundled}"
        while stage in chain:
            assert stage != "wheels" and "BUILD_PACKAGES" not in by_name[stage][1], stage
            stage = chain[stage]
    assert "BUILD_PACKAGES" in by_name["wheels"][1]
    assert "--mount=type=bind,from=wheels" in by_name["image"][1]


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


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(CONTAINERS)))
def test_build_context_keeps_every_file_the_dockerfile_uses(path):
    text = path.read_text()
    sources = [line.split()[1] for line in re.findall(r"^COPY (?!--from)[^\n]+", text, flags=re.M)]
    sources += re.findall(r"--mount=type=bind,source=([^,\s]+)", text)
    assert sources, "no COPY in the Dockerfile?"
    ignore = path.with_name("Dockerfile.dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in ignore if p.strip() and not p.startswith("#")]
    assert ignored("benchmarks/out/big.npz", patterns) and ignored(".git/HEAD", patterns)
    for source in sources:
        assert (REPO / source).exists(), f"{path}: {source} does not exist"
        assert not ignored(source, patterns), f"{path}: {source} is excluded from the build context"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(CONTAINERS)))
def test_no_registry_is_needed_beyond_the_public_base_and_no_ca_bundle_is_baked_in(path):
    text = path.read_text()
    # A '# syntax=' line makes BuildKit pull a frontend image; the built-in frontend has all we use.
    assert not re.search(r"^#\s*syntax=", text, flags=re.M)
    default = re.search(r"^ARG BASE_IMAGE=(\S+)", text, flags=re.M).group(1)
    assert "atacdenoise" not in default and "localhost" not in default and "example" not in default
    if path == CPU_DOCKERFILE:
        assert default == "debian:bookworm-slim"  # the CI base (debootstrap bookworm) is a drop-in for it
    assert not re.search(r"^(COPY|ADD)\b.*\.(crt|pem)\b", text, flags=re.M)
    assert not re.search(r"^ENV\b.*(PIP_CERT|REQUESTS_CA_BUNDLE|SSL_CERT_FILE)", text, flags=re.M)
    for run in re.findall(r"^RUN [^\n]*(?:\\\n[^\n]*)*", text, flags=re.M):
        if re.search(r"pip (install|wheel)", run) and "--no-index" not in run:
            assert "--mount=type=secret,id=ca_bundle" in run, "each pip step that reaches PyPI gets the CA bundle"


def test_build_sh_passes_base_image_and_ca_bundle_only_when_asked(tmp_path):
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")

    def dry_run(*args):
        return subprocess.run(["bash", str(CONTAINERS / "build.sh"), "--dry-run", *args],
                              capture_output=True, text=True)

    plain = dry_run("--role", "infer")
    assert plain.returncode == 0 and plain.stdout.count("docker build") == 1
    assert f"--file {CPU_DOCKERFILE} " in plain.stdout
    assert f"--file {CONTAINERS / 'train-gpu' / 'Dockerfile'} " in dry_run("--role", "train-gpu").stdout
    assert "--secret" not in plain.stdout and "BASE_IMAGE" not in plain.stdout
    asked = dry_run("--role", "peaks", "--base-image", "atacdenoise-base:bookworm", "--ca-bundle", str(bundle))
    asked_words = shlex.split(asked.stdout.split("\n")[0])
    assert "BASE_IMAGE=atacdenoise-base:bookworm" == asked_words[asked_words.index("--build-arg") + 1]
    assert "--secret" in asked_words and asked_words[asked_words.index("--secret") + 1] == f"id=ca_bundle,src={bundle}"
    assert dry_run("--role", "gpu").returncode == 2
    assert dry_run("--ca-bundle", str(tmp_path / "missing.crt")).returncode == 2


def test_ci_script_parses():
    assert subprocess.run(["bash", "-n", str(REPO / ".ci" / "containers.sh")]).returncode == 0
