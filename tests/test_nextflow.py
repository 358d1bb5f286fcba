"""The Nextflow pipeline, checked without the Nextflow binary.

- Structure with a Nextflow parser: `reftrace` (PyPI; DSL2 grammar, a Go library underneath) parses
  main.nf and modules/: every include resolves to a file defining what it names (the nf-schema plugin
  aside), every process has one tag, one label, a container of an image containers/ builds, a stub and
  a versions output (reftrace 0.6 exposes directives, includes and workflow emits but not output or
  stub blocks, so those two are read from the text), and every emitted channel, of processes and of
  sub-workflows, is used in main.nf or published (conf/modules.config publishes every output but
  versions.yml, which must be collected). Each module's meta.yml lists its inputs, emits, tools (the
  versions.yml keys) and image as the module declares them.
- Syntax: every .nf and .config file parses with the `groovy-parser` package (a lark
  grammar of Groovy 3). Nextflow's DSL is Groovy, and process/workflow blocks,
  `input:` labels and `include { A } from '...'` are plain Groovy (labelled statements,
  closures, command chains), so no pre-processing is needed. The parser is slow (an
  Earley parser in pure Python, ~5-10 ms per token), so results are cached by content
  hash in .pytest_cache/groovy-parser (the library's own cache): only changed files
  are parsed again.
- Parameters: nextflow_schema.json is valid JSON Schema 2020-12, names and defaults
  agree with nextflow.config, and the defaults (and the test profile) validate.
- Structure: nf-core conventions per module, image names matching containers/build.sh.
- Contract: each module's `script:` text is taken from the .nf file, its Groovy
  placeholders filled with small real files (simulated), run with bash (bin/ on PATH)
  like Nextflow runs it, and every declared output is checked to exist and be valid.
  WINDOWS and DENOISE run twice: counts-only, and with genome channels (FASTA, GTF
  and BED annotations staged as Nextflow stages them) through search, ONNX and denoise.
  Modules whose subcommand is not available yet (`atacdenoise CMD --help` fails) or
  not implemented yet are skipped with that reason.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = sorted((REPO / "modules").glob("*.nf"))
CONFIGS = [REPO / "nextflow.config", *sorted((REPO / "conf").glob("*.config"))]
LABELS = {"process_single", "process_low", "process_medium", "process_high", "process_gpu"}
# Modules that run a third-party tool directly, as nf-core's modules of the same name (no bin/ executable).
THIRD_PARTY = {"CAT_FASTQ": "cat_lanes", "SAMTOOLS_MERGE": "samtools", "MULTIQC": "multiqc"}


# ---------------------------------------------------------------- reading the pipeline files

@dataclass
class Process:
    name: str
    text: str
    inputs: str
    outputs: list[str]   # path patterns as written, e.g. "${prefix}.bam"
    optional: list[str]  # those of outputs declared `optional: true`
    script: str          # the script's Groovy string, as written
    script_block: str    # everything between `script:` and `stub:`
    stub: str


def section(text: str, start: str, ends: tuple[str, ...]) -> str:
    match = re.search(rf"^\s*{start}:\s*$", text, flags=re.M)
    if not match:
        return ""
    rest = text[match.end():]
    stops = [m.start() for end in ends for m in [re.search(rf"^\s*{end}:\s*$", rest, flags=re.M)] if m]
    return rest[: min(stops)] if stops else rest


def read_process(path: Path) -> Process:
    text = path.read_text()
    name = re.search(r"^process\s+(\w+)\s*\{", text, flags=re.M).group(1)
    outputs_text = section(text, "output", ("when", "script"))
    outputs = re.findall(r'path\(?\s*"([^"]+)"', outputs_text)
    optional = [o for line in outputs_text.splitlines() if "optional: true" in line
                for o in re.findall(r'path\(?\s*"([^"]+)"', line)]
    script_block = section(text, "script", ("stub",))
    script = re.search(r'"""(.*?)"""', script_block, flags=re.S).group(1)
    return Process(name, text, section(text, "input", ("output",)), outputs, optional, script, script_block,
                   section(text, "stub", ()))


PLACEHOLDER = re.compile(r"(?<!\\)\$\{([^}]*)\}|(?<!\\)\$([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)")


def render(template: str, values: dict[str, str]) -> str:
    """Fill Groovy ${expr} / $name placeholders from ``values``; unknown ones fail the test."""
    def fill(match: re.Match) -> str:
        expr = (match.group(1) or match.group(2)).strip()
        if expr not in values:
            pytest.fail(f"the contract test has no value for the Groovy expression ${{{expr}}}")
        return str(values[expr])
    return PLACEHOLDER.sub(fill, template).replace("\\$", "$")


def expand_braces(pattern: str) -> list[str]:
    """Nextflow globs allow {a,b}; Python's glob does not."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    return [p for alt in match.group(1).split(",")
            for p in expand_braces(pattern[: match.start()] + alt + pattern[match.end():])]


def config_params(text: str) -> dict[str, object]:
    """`params { name = value }` blocks and `params.name = value` lines, values as Python."""
    found: dict[str, object] = {}
    for block in re.findall(r"^\s*params\s*\{(.*?)^\s*\}", text, flags=re.M | re.S):
        for name, value in re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*(?://.*)?$", block, flags=re.M):
            found[name] = groovy_literal(value)
    for name, value in re.findall(r"^\s*params\.(\w+)\s*=\s*(.+?)\s*(?://.*)?$", text, flags=re.M):
        found[name] = groovy_literal(value)
    return found


def groovy_literal(value: str):
    value = value.strip()
    if value == "null":
        return None
    if value in ("true", "false"):
        return value == "true"
    if value[0] in "'\"":
        return value[1:-1]
    return float(value) if "." in value else int(value)


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads((REPO / "nextflow_schema.json").read_text())


def schema_properties(schema: dict) -> dict[str, dict]:
    props = dict(schema.get("properties", {}))
    for group in schema.get("$defs", {}).values():
        props.update(group.get("properties", {}))
    return props


# ---------------------------------------------------------------- syntax

@pytest.mark.slow
@pytest.mark.parametrize("path", [*MODULES, REPO / "main.nf", *CONFIGS], ids=lambda p: str(p.relative_to(REPO)))
def test_parses_as_groovy(path):
    groovy_parser = pytest.importorskip("groovy_parser.parser", reason="pip install groovy-parser")
    cache = REPO / ".pytest_cache" / "groovy-parser"
    cache.mkdir(parents=True, exist_ok=True)
    tree = groovy_parser.parse_and_digest_groovy_content(path.read_text(), cache_directory=cache)
    assert tree["rule"][0] == "compilation_unit" and tree["children"]


def test_the_parser_rejects_broken_groovy():
    """Guards the test above: a missing brace must not parse."""
    groovy_parser = pytest.importorskip("groovy_parser.parser", reason="pip install groovy-parser")
    with pytest.raises(Exception):
        groovy_parser.parse_groovy_content("process X {\n    input:\n    val x\n")


# ---------------------------------------------------------------- parameters

def test_schema_is_valid_json_schema(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_config_params_match_the_schema(schema):
    defaults = config_params((REPO / "nextflow.config").read_text().split("profiles {")[0])
    props = schema_properties(schema)
    assert set(defaults) == set(props), "params in nextflow.config and nextflow_schema.json differ"
    for name, value in defaults.items():
        assert props[name].get("default") == value, f"default of {name}: config {value!r}, schema {props[name].get('default')!r}"
    # --outdir is required (nf-core's rule): no default, and the defaults alone do not validate
    assert defaults["outdir"] is None and "outdir" in schema["$defs"]["input_output_options"]["required"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(defaults)
    jsonschema.Draft202012Validator(schema).validate({**defaults, "outdir": "results"})
    # every params.X the pipeline reads is declared
    used = set()
    for path in [REPO / "main.nf", *MODULES, *CONFIGS]:
        text = path.read_text()
        used |= set(re.findall(r"params\.(\w+)", text)) | set(re.findall(r"requireParam\('(\w+)'\)", text))
    assert used <= set(props), f"undeclared params: {sorted(used - set(props))}"


def test_genome_channel_params_are_declared(schema):
    """gtf, annotation and sequence_channels: optional, typed, documented; the default run stays counts-only."""
    props = schema_properties(schema)
    validator = jsonschema.Draft202012Validator(schema)
    defaults = config_params((REPO / "nextflow.config").read_text().split("profiles {")[0])
    defaults["outdir"] = "results"  # required on the command line
    for name in ("gtf", "annotation"):
        assert props[name]["type"] == ["string", "null"] and defaults[name] is None
    assert props["gtf"]["format"] == "file-path"
    assert props["sequence_channels"]["type"] == "boolean" and props["sequence_channels"]["default"] is False
    assert defaults["sequence_channels"] is False
    for name in ("gtf", "annotation", "sequence_channels"):
        assert props[name]["description"] and props[name]["help_text"], name
    good = {**defaults, "fasta": "genome.fa.gz", "gtf": "gencode.v19.annotation.gtf.gz", "sequence_channels": True,
            "annotation": "cpg_islands=cpg.bed,blacklist=hg19-blacklist.v2.bed,h3k27ac=H3K27ac.bw"}
    validator.validate(good)
    for bad in ({"gtf": "genes.bed"}, {"annotation": "cpg.bed"}, {"annotation": "tss=genes.gtf,"},
                {"annotation": "a=x.bed, b=y.bed"}, {"sequence_channels": "yes"}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate({**defaults, **bad})


def test_genome_channels_reach_windows_and_denoise_as_staged_inputs():
    """main.nf hands WINDOWS and DENOISE the FASTA and annotations as process inputs ([] when absent)."""
    main = (REPO / "main.nf").read_text()
    assert re.search(r"WINDOWS\(ch_prepare, ch_chrom_sizes, ch_sequence_fasta, ch_annotations\)", main)
    assert re.search(r"DENOISE\(denoiseTasks\(ch_insertions, chunks\), ch_model_file, model_uri, ch_chrom_sizes, "
                     r"ch_genome_fasta,\s+ch_annotations, blacklistInput\(\)\)", main)
    assert "params.sequence_channels ? ch_fasta : Channel.value([])" in main  # absent: an empty optional input
    assert "return Channel.value([names, specs.collect { file(it[1], checkIfExists: true) }])" in main
    assert "specs << ['tss', params.gtf]" in main
    # every caller passes them on
    assert len(re.findall(r"INPUTS\.out\.sequence_fasta,\s*INPUTS\.out\.annotations\)", main)) == 2
    assert len(re.findall(r"INPUTS\.out\.genome_fasta,\s*INPUTS\.out\.annotations\)", main)) == 2
    for module in ("windows", "denoise"):
        proc = read_process(REPO / "modules" / f"{module}.nf")
        assert re.search(r"^\s*path fasta\b", proc.inputs, flags=re.M)
        assert "tuple val(annotation_names), path(annotations, stageAs: 'annotation?/*')" in proc.inputs
        for line in GENOME_GROOVY:  # what genome_values() below computes, as the module computes it
            assert line in proc.script_block, f"{module}.nf: {line}"
        assert "${fasta_arg} ${annotation_args}" in proc.script
        assert "fasta" not in proc.stub and "annotation" not in proc.stub  # the stub needs none of them


def test_search_choices_agree_with_the_command_line(schema):
    """The schema's enums for --space and --loss are what 'atacdenoise search' accepts."""
    from atacdenoise.cli import build_parser
    from atacdenoise.search.candidate import LOSSES

    search = build_parser()._subparsers._group_actions[0].choices["search"]
    choices = {action.dest: set(action.choices) for action in search._actions if action.choices}
    props = schema_properties(schema)
    assert set(props["search_loss"]["enum"]) == choices["loss"] == set(LOSSES)
    assert set(props["search_space"]["enum"]) == choices["space"]


def test_profiles_set_only_valid_params(schema):
    defaults = config_params((REPO / "nextflow.config").read_text().split("profiles {")[0])
    test_params = config_params((REPO / "conf" / "test.config").read_text())
    assert test_params["simulate"] is True
    defaults["outdir"] = "results"  # required on the command line
    jsonschema.Draft202012Validator(schema).validate({**defaults, **test_params})
    gpu_params = config_params((REPO / "nextflow.config").read_text().split("profiles {")[1])
    jsonschema.Draft202012Validator(schema).validate({**defaults, **gpu_params})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**defaults, "device": "tpu"})


def test_profiles_exist_with_their_settings():
    config = (REPO / "nextflow.config").read_text()
    profiles = config.split("profiles {")[1]
    for name in ("docker", "singularity", "gpu", "test", "local", "slurm", "awsbatch"):
        assert re.search(rf"^\s*{name}\s*\{{", profiles, flags=re.M), f"profile {name} missing"
    awsbatch = re.search(r"^\s*awsbatch\s*\{(.*?)^\s{4}\}", profiles, flags=re.M | re.S).group(1)
    assert "executor       = 'awsbatch'" in awsbatch and "queue          = params.awsbatch_queue" in awsbatch
    main = (REPO / "main.nf").read_text()
    assert "if (!workflow.workDir.toString().startsWith('s3:'))" in main and "if (!params.awsbatch_queue)" in main
    gpu = re.search(r"^\s*gpu\s*\{(.*?)^\s{4}\}", profiles, flags=re.M | re.S).group(1)
    assert "--gpus all" in gpu and "'--nv'" in gpu and re.search(r"process_gpu\s*\{\s*accelerator = 1", gpu)
    base = (REPO / "conf" / "base.config").read_text()
    assert set(re.findall(r"withLabel:\s*(\w+)", base)) == LABELS


# ---------------------------------------------------------------- module structure and containers

def build_sh_roles() -> tuple[list[str], str]:
    out = subprocess.run(["bash", str(REPO / "containers" / "build.sh"), "--dry-run", "--gpu"],
                         capture_output=True, text=True, check=True).stdout
    return re.findall(r"--tag (\S+)", out), out


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_module_follows_nf_core_conventions(path):
    proc = read_process(path)
    assert path.stem == proc.name.lower(), "one process per file, named after it"
    assert len(re.findall(r"^process\s", proc.text, flags=re.M)) == 1
    assert re.search(r"^\s*tag\s", proc.text, flags=re.M)
    assert set(re.findall(r"^\s*label\s+'(\w+)'", proc.text, flags=re.M)) <= LABELS
    assert len(re.findall(r"^\s*label\s", proc.text, flags=re.M)) == 1
    assert re.search(r'container "\$\{params\.container_prefix\}/[\w-]+:\$\{params\.container_tag\}"', proc.text)
    assert '"versions.yml", emit: versions' in proc.text
    if proc.name != "CAT_FASTQ":  # cat takes no arguments
        assert "task.ext.args" in proc.script_block and "${args}" in proc.script
    assert proc.stub.strip(), "stub: block missing"
    assert all("emit:" in line for line in section(proc.text, "output", ("when",)).strip().splitlines())
    if proc.name not in ("BOWTIE2_BUILD", "MULTIQC"):
        assert "val(meta)" in proc.inputs or "val meta" in proc.inputs
    # exactly one bin/ executable does the work (the rest writes versions.yml); third-party modules call their tool
    calls = re.findall(r"^\s*(atac-[\w-]+)\s", proc.script, flags=re.M)
    if proc.name in THIRD_PARTY:
        assert not calls and re.search(rf"^\s*{THIRD_PARTY[proc.name]}\s", proc.script, flags=re.M)
    else:
        assert len(calls) == 1 and os.access(REPO / "bin" / calls[0], os.X_OK), calls


def test_images_match_build_sh_and_the_package_version():
    version = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), flags=re.M).group(1)
    config = config_params((REPO / "nextflow.config").read_text().split("profiles {")[0])
    assert config["container_tag"] == version
    tags, out = build_sh_roles()
    built = {t.split("/")[-1].split(":")[0] for t in tags}
    assert all(t.startswith(f"{config['container_prefix']}/") and t.endswith(f":{version}") for t in tags)
    used = {re.search(r"container_prefix\}/([\w-]+):", p.read_text()).group(1) for p in MODULES}
    assert used <= built, f"modules use images build.sh does not build: {used - built}"
    commands = [shlex.split(line) for line in out.splitlines() if line.startswith("+ DOCKER_BUILDKIT=1 ")]
    commands = {words[words.index("--tag") + 1].split("/")[-1].split(":")[0]: words for words in commands}
    args = {role: dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--build-arg")
            for role, words in commands.items()}
    for role in built:  # the CPU roles share containers/Dockerfile: their build args say what differs
        command = commands[role]
        dockerfile = Path(command[command.index("--file") + 1]).read_text()
        assert re.search(r"^ARG BASE_IMAGE=\S+", dockerfile, flags=re.M)
        assert "--mount=type=secret,id=ca_bundle" in dockerfile
        pip_lines = " ".join(re.findall(r"pip (?:install|wheel)[^\n]*", dockerfile))
        if "train" in role:
            assert "torch==2.13.0" in pip_lines
        else:
            installs = pip_lines + args[role].get("PYTHON_DEPENDENCIES", "")
            assert "torch" not in installs and "train" not in installs, f"{role} must not install torch"
    assert "onnxruntime" in args["infer"]["PYTHON_DEPENDENCIES"]


def test_main_includes_every_module_and_defines_the_entries():
    main = (REPO / "main.nf").read_text()
    included = set(re.findall(r"from '\./modules/(\w+)'", main))
    assert included == {p.stem for p in MODULES}
    for entry in (r"workflow train\s*\{", r"workflow denoise\s*\{", r"^workflow\s*\{"):
        assert re.search(entry, main, flags=re.M), entry
    assert "label 'process_gpu'" in (REPO / "modules" / "nash_search.nf").read_text()


def test_nf_schema_manifest_and_run_records():
    """nf-schema pinned and used; manifest as nf-core has it; dag/timeline/report/trace under outdir/pipeline_info."""
    config = (REPO / "nextflow.config").read_text()
    assert re.search(r"^plugins \{\s*id 'nf-schema@\d+\.\d+\.\d+'\s*\}", config, flags=re.M), "nf-schema not pinned"
    assert re.search(r"validation \{\s*help \{\s*enabled = true", config)
    manifest = re.search(r"^manifest \{(.*?)^\}", config, flags=re.M | re.S).group(1)
    assert "nextflowVersion = '!>=24.10.0'" in manifest  # nf-schema 2.4.x refuses older Nextflow
    for key in ("name", "homePage", "description", "version", "mainScript"):
        assert re.search(rf"^\s*{key}\s*=\s*'\S.*'", manifest, flags=re.M), key
    version = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), flags=re.M).group(1)
    assert f"version         = '{version}'" in manifest
    for record in ("dag", "timeline", "report", "trace"):
        block = re.search(rf"^{record} \{{(.*?)^\}}", config, flags=re.M | re.S).group(1)
        assert "enabled = true" in block and 'file    = "${params.outdir}/pipeline_info/' in block, record
    main = (REPO / "main.nf").read_text()
    assert "include { validateParameters; paramsSummaryLog; samplesheetToList } from 'plugin/nf-schema'" in main
    assert 'samplesheetToList(sheet, "${projectDir}/assets/schema_input.json")' in main
    # validateParameters() first thing in every entry workflow
    for entry in re.findall(r"^workflow(?: (?:train|denoise))? \{\n\s*(\S+)", main, flags=re.M):
        assert entry == "initialise()"
    assert len(re.findall(r"^workflow(?: (?:train|denoise))? \{", main, flags=re.M)) == 3
    assert "validateParameters()" in main and main.count("FINISH(") == 3
    assert "storeDir: \"${params.outdir}/pipeline_info\", name: 'software_versions.yml'" in main
    assert "'atacdenoise_software_mqc_versions.yml'" in main  # MultiQC's software-versions file name


@pytest.fixture(scope="module")
def parsed():
    """reftrace's view of main.nf and modules/ (it parses every .nf under the folder)."""
    reftrace = pytest.importorskip("reftrace", reason="pip install reftrace")
    result = reftrace.parse_modules(str(REPO))
    assert not result.errors, [f"{e.path}: {e.error}" for e in result.errors]
    return {(REPO / m.path).resolve().relative_to(REPO).as_posix(): m for m in result.results}, result


def test_reftrace_every_include_resolves(parsed):
    modules, result = parsed
    assert {"main.nf", *(f"modules/{p.name}" for p in MODULES)} <= set(modules)
    unresolved = [(i.module_path, i.includes) for i in result.unresolved_includes
                  if any(not target.startswith("plugin/") for target in i.includes)]
    assert unresolved == []
    for path, module in modules.items():
        for include in module.includes:
            if include.from_module.startswith("plugin/"):
                assert include.from_module == "plugin/nf-schema", include.from_module
                continue
            target = (REPO / Path(path).parent / include.from_module).resolve().relative_to(REPO).as_posix() + ".nf"
            assert target in modules, f"{path} line {include.line}: {include.from_module} does not exist"
            defined = {p.name for p in modules[target].processes} | {w.name for w in modules[target].workflows}
            names = {item.name for item in include.items}
            assert names <= defined, f"{path} line {include.line}: {target} does not define {names - defined}"


def test_reftrace_every_process_has_tag_label_container_stub_and_versions(parsed):
    modules, _ = parsed
    roles = {t.split("/")[-1].split(":")[0] for t in build_sh_roles()[0]}
    processes = [(path, proc) for path, module in modules.items() for proc in module.processes]
    assert {proc.name for _, proc in processes} == {read_process(p).name for p in MODULES}
    for path, proc in processes:
        assert len(proc.tags) == 1, f"{proc.name}: tag"
        assert [label.value for label in proc.labels] in ([label] for label in LABELS), f"{proc.name}: one label"
        assert len(proc.containers) == 1, f"{proc.name}: container"
        image = re.search(r"container_prefix\}/([\w-]+):", str(proc.containers[0]._value))
        assert image and image.group(1) in roles, f"{proc.name}: image not built by containers/build.sh"
        # not exposed by reftrace 0.6: read from the module text
        text = read_process(REPO / path)
        assert text.stub.strip(), f"{proc.name}: stub"
        assert re.search(r'^\s*path "versions\.yml", emit: versions$', text.text, flags=re.M), f"{proc.name}: versions"


def strip_comments(text: str) -> str:
    return re.sub(r"(^|\s)//.*$", r"\1", text, flags=re.M)


def unpublished() -> set[str]:
    """Process names (or aliases) whose outputs conf/modules.config does not publish."""
    config = (REPO / "conf" / "modules.config").read_text()
    names = set()
    for selector, body in re.findall(r"withName: '([^']+)' \{(.*?)\n    \}", config, flags=re.S):
        if "enabled: false" in body:
            names |= set(selector.split("|"))
    return names


def test_every_emitted_channel_is_used_or_published(parsed):
    """Process emits: used in main.nf as ALIAS.out.NAME, or published (never versions: those must be collected).
    Sub-workflow emits: used as WORKFLOW.out.NAME, or a published process output passed on."""
    modules, _ = parsed
    main = strip_comments((REPO / "main.nf").read_text())
    used = set(re.findall(r"\b(\w+)\.out\.(\w+)", main))
    emits = {proc.name: re.findall(r"emit:\s*(\w+)", read_process(p).text) for p in MODULES for proc in [read_process(p)]}
    aliases = {(item.alias or item.name): item.name for include in modules["main.nf"].includes
               for item in include.items if not include.from_module.startswith("plugin/")}
    hidden = unpublished()

    def published(alias: str, emit: str) -> bool:
        return emit != "versions" and alias not in hidden and aliases[alias] not in hidden

    problems = [f"{alias}.out.{emit}" for alias, name in aliases.items() for emit in emits[name]
                if (alias, emit) not in used and not published(alias, emit)]
    assert problems == [], f"emitted, never used nor published: {problems}"
    for workflow in modules["main.nf"].workflows:
        body = re.search(rf"^workflow {workflow.name} \{{(.*?)^\}}", main, flags=re.M | re.S)
        for emit in workflow.emits:
            if (workflow.name, emit) in used:
                continue
            source = re.search(rf"^\s*{emit}\s*=\s*(\w+)\.out\.(\w+)\s*$", body.group(1), flags=re.M)
            assert source and source.group(1) in aliases and published(*source.groups()), \
                f"{workflow.name}.out.{emit} is never used and is not a published process output"


def declared_elements(block: str) -> list[tuple[list[str], str | None]]:
    """Each input/output line: its element names (path patterns with ${prefix} as *) and its emit name."""
    lines = []
    for line in strip_comments(block).splitlines():
        if not line.strip():
            continue
        names = [n.strip('"').replace("${prefix}", "*") for _, n in re.findall(r'(val|path)\(?\s*("[^"]+"|\w+)', line)]
        emit = re.search(r"emit:\s*(\w+)", line)
        lines.append((names, emit.group(1) if emit else None))
    return lines


def yaml_names(entries) -> list[str]:
    """[{name: spec}] or [[{name: spec}, ...]] -> the names, in order."""
    if isinstance(entries, dict):
        return list(entries)
    return [name for entry in entries for name in yaml_names(entry)]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_module_meta_yml_matches_the_module(path):
    yaml = pytest.importorskip("yaml")
    proc = read_process(path)
    meta = yaml.safe_load((path.parent / f"{path.stem}.meta.yml").read_text())
    assert meta["name"] == path.stem and meta["description"] and meta["keywords"]
    inputs = declared_elements(proc.inputs)
    assert [yaml_names(entry) for entry in meta["input"]] == [names for names, _ in inputs]
    outputs = declared_elements(section(proc.text, "output", ("when", "script")))
    assert list(meta["output"]) == [emit for _, emit in outputs]
    for names, emit in outputs:
        assert yaml_names(meta["output"][emit]) == names, emit
    for entry in [*meta["input"], *meta["output"].values()]:
        for spec in (e for item in (entry if isinstance(entry, list) else [entry])
                     for e in (item if isinstance(item, list) else [item])):
            (name, fields), = spec.items()
            assert fields["type"] and fields["description"], f"{path.stem}: {name}"
    # tools: what versions.yml reports; the image: the module's container
    tools = re.findall(r"^\s+([\w-]+): \\\$\(", proc.script, flags=re.M)
    assert [name for tool in meta["tools"] for name in tool] == tools
    assert all(spec["homepage"] and spec["licence"] for tool in meta["tools"] for spec in tool.values())
    image = re.search(r"container_prefix\}/([\w-]+):", proc.text).group(1)
    assert meta["container"].startswith(f"atacdenoise/{image} ")


# ---------------------------------------------------------------- contract: run each script for real

SIM_ARGS = "--chroms 2 --chrom-length 150000 --fragments 30000 --seed 1"


def subcommand_available(words: list[str]) -> str | None:
    """None when `atacdenoise WORDS --help` works, else why not."""
    if shutil.which("atacdenoise") is None:
        return "atacdenoise is not installed (pip install -e .)"
    result = subprocess.run(["atacdenoise", *words, "--help"], capture_output=True, text=True)
    if result.returncode != 0:
        return f"`atacdenoise {' '.join(words)}` does not exist yet"
    return None


def check_output(path: Path) -> None:
    """The file is what its name promises."""
    name = path.name
    assert path.exists(), path
    if path.is_dir():
        assert any(path.iterdir()), f"{name} is an empty folder"
        if name.endswith(".tracks"):
            assert (path / "meta.json").exists()
        return
    # A barely trained test model's peak head starts at the base rate (set_peak_prior), so DENOISE may
    # call no peak from its probability: an empty PREFIX.peaks.narrowPeak is a valid answer there.
    if name.endswith(".peaks.narrowPeak") and path.stat().st_size == 0:
        return
    assert path.stat().st_size > 0, f"{name} is empty"
    if name.endswith(".bam"):
        import pysam
        with pysam.AlignmentFile(str(path)) as bam:
            assert bam.header["HD"]["SO"] == "coordinate" and bam.mapped > 0  # .mapped needs the index
    elif name.endswith(".bed.gz"):
        with gzip.open(path, "rt") as fh:
            rows = [line.split("\t") for line in itertools.islice(fh, 100)]
        assert rows and all(len(r) >= 6 for r in rows)
    elif name.endswith("narrowPeak"):
        rows = [line.split("\t") for line in path.read_text().splitlines()]
        assert rows and all(len(r) == 10 for r in rows)
    elif name.endswith(".bw"):
        import pyBigWig
        bw = pyBigWig.open(str(path))
        assert bw.isBigWig() and bw.chroms()
        bw.close()
    elif name.endswith(".bb"):
        import pyBigWig
        with pyBigWig.open(str(path)) as bb:
            assert bb.isBigBed() and bb.chroms()
    elif name.endswith(".bed.gz.tbi"):
        import pysam
        with pysam.TabixFile(str(path.with_suffix("")), index=str(path)) as tabix:
            assert tabix.contigs
    elif name.endswith(".igv.xml"):
        import xml.etree.ElementTree as ET
        resources = [r.get("path") for r in ET.parse(path).getroot().iter("Resource")]
        assert resources and all((path.parent / r).is_file() for r in resources), resources
    elif name.endswith(".npz"):
        import numpy as np
        with np.load(path) as data:
            assert data.files
    elif name.endswith(".onnx"):
        onnx = pytest.importorskip("onnx")
        onnx.checker.check_model(str(path))
    elif name.endswith(".fastq.gz"):
        with gzip.open(path, "rt") as fh:
            assert fh.readline().startswith("@")
    elif name.endswith(".fa"):
        assert path.read_text()[:1] == ">"
    elif name == "chrom.sizes":
        from atacdenoise.io.chromsizes import read_chrom_sizes
        assert read_chrom_sizes(path)
    elif name == "versions.yml":
        lines = path.read_text().splitlines()
        assert re.fullmatch(r'"[A-Z0-9_]+":', lines[0]), lines
        assert all(re.fullmatch(r"    [\w-]+: \S.*", line) for line in lines[1:]) and len(lines) > 1, lines


class Runner:
    """Runs module scripts in task folders, each once, upstream first (like a tiny Nextflow)."""

    def __init__(self, root: Path):
        self.root = root
        self.done: dict[str, dict[str, Path]] = {}
        self.skipped: dict[str, str] = {}
        self.stderr: dict[str, str] = {}
        self.path = f"{REPO / 'bin'}{os.pathsep}{os.environ['PATH']}"

    def run(self, module: str, command: list[str], stage: dict[str, Path], values: dict[str, str],
            task: str | None = None) -> dict[str, Path]:
        """Run ``module``'s script once per ``task`` (default: the module's name; another name runs it again)."""
        task = task or module
        if task in self.skipped:
            pytest.skip(self.skipped[task])
        if task in self.done:
            return self.done[task]
        reason = subcommand_available(command)
        if reason:
            self.skipped[task] = reason
            pytest.skip(reason)
        proc = read_process(REPO / "modules" / f"{module}.nf")
        workdir = self.root / task
        workdir.mkdir()
        for name, source in stage.items():  # Nextflow stages inputs as symlinks (stageAs may add a folder)
            (workdir / name).parent.mkdir(parents=True, exist_ok=True)
            (workdir / name).symlink_to(Path(source).resolve())
        values = {"task.process": proc.name, "task.cpus": "2", **values}
        script = textwrap.dedent(render(proc.script, values))
        result = subprocess.run(["bash", "-ue", "-c", script], cwd=workdir, capture_output=True, text=True,
                                env={**os.environ, "PATH": self.path}, timeout=300)
        self.stderr[task] = result.stderr
        if result.returncode != 0:
            if "NotImplementedError" in result.stderr:
                self.skipped[task] = f"`atacdenoise {' '.join(command)}` is not implemented yet"
                pytest.skip(self.skipped[task])
            pytest.fail(f"{proc.name} script failed (exit {result.returncode}):\n{script}\n{result.stderr[-3000:]}")
        outputs = {}
        for pattern in proc.outputs:
            rendered = render(pattern, values)
            matches = [m for p in expand_braces(rendered) for m in sorted(workdir.glob(p))]
            assert matches or pattern in proc.optional, f"{proc.name}: declared output {rendered!r} was not written"
            for match in matches:
                check_output(match)
                outputs[match.name] = match
        self.done[task] = outputs
        return outputs


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> Runner:
    return Runner(tmp_path_factory.mktemp("tasks"))


def simulated(runner: Runner) -> dict[str, Path]:
    return runner.run("simulate", ["simulate"], {}, {"meta.id": "sim", "prefix": "sim", "args": SIM_ARGS})


def insertions(runner: Runner) -> Path:
    sim = simulated(runner)
    out = runner.run("filter_shift", ["insertions"], {"sim.bam": sim["sim.bam"], "sim.bam.bai": sim["sim.bam.bai"]},
                     {"meta.id": "sim", "prefix": "sim", "args": "", "bam": "sim.bam"})
    return out["sim.insertions.bed.gz"]


def sizes(runner: Runner) -> Path:
    return simulated(runner)["chrom.sizes"]


def staged_insertions(runner: Runner) -> dict[str, Path]:
    return {"sim.insertions.bed.gz": insertions(runner), "chrom.sizes": sizes(runner)}


def reads_values(prefix: str = "sim") -> dict[str, str]:
    return {"meta.id": prefix, "prefix": prefix, "args": "", "insertions": "sim.insertions.bed.gz",
            "chrom_sizes": "chrom.sizes", "blacklist_arg": ""}


def peaks(runner: Runner) -> dict[str, Path]:
    return runner.run("call_peaks", ["peaks"], staged_insertions(runner), reads_values())


def coverage(runner: Runner) -> dict[str, Path]:
    return runner.run("bin", ["bin"], staged_insertions(runner), reads_values())


def index(runner: Runner) -> Path:
    out = runner.run("bowtie2_build", ["align"], {"genome.fa": simulated(runner)["genome.fa"]},
                     {"fasta": "genome.fa", "args": ""})
    return out["bowtie2_index"]


# The Groovy lines WINDOWS and DENOISE turn their genome inputs into arguments with (checked to be in the
# modules); genome_values() computes the same from the files staged as Nextflow stages them.
GENOME_GROOVY = (
    "def fasta_arg = fasta ? \"--fasta ${fasta}\" : ''",
    "def annotation_files = annotations instanceof Path ? [annotations] : annotations.collect()",
    "def annotation_args = [annotation_names, annotation_files].transpose().collect { name, file -> "
    "\"--annotation ${name}=${file}\" }.join(' ')",
)


def genome_values(fasta: Path | None = None, annotations: dict[str, Path] | None = None
                  ) -> tuple[dict[str, Path], dict[str, str]]:
    """Stage the optional genome inputs ([] when absent) and fill the values the modules compute from them.

    ``path fasta`` keeps the file's name; ``path(annotations, stageAs: 'annotation?/*')`` puts the i-th
    file (from 1) in ``annotationI/`` under its own name, so files of the same name do not collide.
    """
    stage = {fasta.name: fasta} if fasta else {}
    args = []
    for i, (name, path) in enumerate((annotations or {}).items(), start=1):
        stage[f"annotation{i}/{path.name}"] = path
        args.append(f"--annotation {name}=annotation{i}/{path.name}")
    return stage, {"fasta_arg": f"--fasta {fasta.name}" if fasta else "", "annotation_args": " ".join(args)}


def annotation_files(runner: Runner) -> dict[str, Path]:
    """A GTF of genes and two BED files of the same name (they must not collide when staged) on the simulated genome."""
    folder = runner.root / "annotation_files"
    if not folder.exists():
        (folder / "cpg").mkdir(parents=True)
        (folder / "blacklist").mkdir()
        from atacdenoise.io.chromsizes import read_chrom_sizes
        chroms = {c: n for c, n in read_chrom_sizes(sizes(runner)).items() if c != "chrM"}
        gtf = []
        for chrom, length in chroms.items():
            for i, start in enumerate(range(5_000, length - 10_000, 20_000)):
                strand = "+-"[i % 2]
                gtf.append(f'{chrom}\tsim\tgene\t{start + 1}\t{start + 3_000}\t.\t{strand}\t.\t'
                           f'gene_id "{chrom}g{i}"; gene_name "G{i}";')
                gtf.append(f'{chrom}\tsim\texon\t{start + 1}\t{start + 500}\t.\t{strand}\t.\t'
                           f'gene_id "{chrom}g{i}"; transcript_id "{chrom}t{i}";')
        (folder / "genes.gtf").write_text("\n".join(gtf) + "\n")
        (folder / "cpg" / "regions.bed").write_text(
            "".join(f"{c}\t{s}\t{s + 800}\n" for c, n in chroms.items() for s in range(4_600, n - 10_000, 20_000)))
        (folder / "blacklist" / "regions.bed").write_text(f"chr1\t60000\t61000\nchr2\t30000\t30500\n")
    return {"tss": folder / "genes.gtf", "cpg_islands": folder / "cpg" / "regions.bed",
            "blacklist": folder / "blacklist" / "regions.bed"}


WINDOWS_ARGS = "--train-chroms chr1 --val-chroms chr2 --depths 0.1,1.0 --n-train 16 --resample"
SEARCH_ARGS = ("--space hilbert2d --iterations 1 --children 1 --epochs 1 --initial-draws 1 "
               "--initial-epochs 1 --max-train-windows 8 --batch-size 4 --device cpu --quiet")


def windows(runner: Runner, genome: bool = False) -> dict[str, Path]:
    """WINDOWS counts-only, or (``genome``) with the simulated FASTA, a GTF and two BED annotations."""
    stage = {**staged_insertions(runner), "clean.bw": coverage(runner)["sim.coverage.bw"],
             "clean.narrowPeak": peaks(runner)["sim.narrowPeak"]}
    extra_stage, extra_values = (genome_values(simulated(runner)["genome.fa"], annotation_files(runner)) if genome
                                 else genome_values())
    values = {**reads_values(), "clean_bigwig": "clean.bw", "clean_peaks": "clean.narrowPeak", "args": WINDOWS_ARGS,
              **extra_values}
    return runner.run("windows", ["prepare"], {**stage, **extra_stage}, values,
                      task="windows_genome" if genome else None)


def search(runner: Runner, genome: bool = False) -> Path:
    win = windows(runner, genome)
    out = runner.run("nash_search", ["search"], {"train.npz": win["train.npz"], "val.npz": win["val.npz"]},
                     {"meta.id": "sim", "prefix": "sim.search", "train": "train.npz", "val": "val.npz",
                      "args": SEARCH_ARGS}, task="nash_search_genome" if genome else None)
    return out["sim.search"]


def skip_unless_available(words: list[str]) -> None:
    """Check a later step first, so the slow search does not run for a step that would skip anyway."""
    reason = subcommand_available(words)
    if reason:
        pytest.skip(reason)


def onnx_model(runner: Runner, genome: bool = False) -> Path:
    skip_unless_available(["registry", "export"])
    stage = {"sim.search": search(runner, genome), "val.npz": windows(runner, genome)["val.npz"]}
    out = runner.run("export_onnx", ["registry", "export"], stage,
                     {"meta.id": "sim", "prefix": "sim", "search": "sim.search", "val": "val.npz", "args": ""},
                     task="export_onnx_genome" if genome else None)
    return out["sim.onnx"]


def denoised(runner: Runner, genome: bool = False, files: bool | None = None) -> dict[str, Path]:
    """DENOISE with the counts-only or the ``genome`` model; ``files``: stage the FASTA and annotations (default:
    with the genome model)."""
    files = genome if files is None else files
    model = onnx_model(runner, genome)
    extra_stage, extra_values = (genome_values(simulated(runner)["genome.fa"], annotation_files(runner)) if files
                                 else genome_values())
    stage = {**staged_insertions(runner), "model.onnx": model, **extra_stage}
    task = "denoise" + ("_genome" if genome else "") + ("_files" if files and not genome else "")
    return runner.run("denoise", ["denoise"], stage, {**reads_values(), "model": "model.onnx", "group_arg": "",
                                                      **extra_values}, task=None if task == "denoise" else task)


def test_contract_simulate(runner):
    out = simulated(runner)
    assert {"sim_R1.fastq.gz", "sim_R2.fastq.gz", "genome.fa", "chrom.sizes", "versions.yml"} <= set(out)


def test_contract_filter_shift(runner):
    assert insertions(runner).name == "sim.insertions.bed.gz"


def test_contract_subsample(runner):
    deep = insertions(runner)
    out = runner.run("subsample", ["subsample"], {"sim.insertions.bed.gz": deep},
                     {"meta.id": "sim", "prefix": "sim", "insertions": "sim.insertions.bed.gz", "fractions": "0.1",
                      "args": "--seed 0"})
    shallow = out["sim.sub0.1.insertions.bed.gz"]
    with gzip.open(shallow, "rt") as a, gzip.open(deep, "rt") as b:
        n_shallow, n_deep = sum(1 for _ in a), sum(1 for _ in b)
    assert 0.05 * n_deep < n_shallow < 0.15 * n_deep


def test_contract_call_peaks(runner):
    assert {"sim.narrowPeak", "sim.signal.bw"} <= set(peaks(runner))


BLACKLIST_GROOVY = "def blacklist_arg = blacklist ? \"--blacklist ${blacklist}\" : ''"


def test_contract_call_peaks_with_a_blacklist(runner, tmp_path):
    """--blacklist reaches CALL_PEAKS and DENOISE as an optional staged input ([] when absent); CALL_PEAKS run
    with a blacklist over a third of its own peaks keeps exactly the others."""
    from conftest import blacklist_against

    main = (REPO / "main.nf").read_text()
    assert "return Channel.value(params.blacklist ? file(params.blacklist, checkIfExists: true) : [])" in main
    assert re.search(r"CALL_PEAKS\(FILTER_SHIFT\.out\.insertions, ch_chrom_sizes, blacklistInput\(\)\)", main)
    assert re.search(r"CALL_PEAKS_SHALLOW\(ch_shallow, ch_chrom_sizes, blacklistInput\(\)\)", main)
    for module in ("call_peaks", "denoise"):
        proc = read_process(REPO / "modules" / f"{module}.nf")
        assert re.search(r"^\s*path blacklist\b", proc.inputs, flags=re.M) and BLACKLIST_GROOVY in proc.script_block
    lines = peaks(runner)["sim.narrowPeak"].read_text().splitlines(keepends=True)
    hit = blacklist_against(peaks(runner)["sim.narrowPeak"], tmp_path / "blacklist.bed")
    out = runner.run("call_peaks", ["peaks"], {**staged_insertions(runner), "blacklist.bed": tmp_path / "blacklist.bed"},
                     {**reads_values(), "blacklist_arg": "--blacklist blacklist.bed"}, task="call_peaks_blacklist")
    assert hit and out["sim.narrowPeak"].read_text() == "".join(line for line in lines if line not in hit)


def test_contract_bin(runner):
    assert {"sim.coverage.bw", "sim.coverage.tracks"} <= set(coverage(runner))


def test_contract_bowtie2_build_and_align(runner):
    sim = simulated(runner)
    stage = {"sim_R1.fastq.gz": sim["sim_R1.fastq.gz"], "sim_R2.fastq.gz": sim["sim_R2.fastq.gz"],
             "bowtie2_index": index(runner)}
    values = {"meta.id": "sim", "prefix": "sim", "args": "", "reads[0]": "sim_R1.fastq.gz",
              "fastq2": "--fastq2 sim_R2.fastq.gz", "index": "bowtie2_index"}
    out = runner.run("align", ["align"], stage, values)
    assert {"sim.bam", "sim.bam.bai"} <= set(out)


def test_contract_windows(runner):
    assert {"train.npz", "val.npz"} <= set(windows(runner))


def read_pairs_meta(path: Path) -> dict:
    import numpy as np
    with np.load(path) as data:
        return json.loads(str(data["meta"]))


def test_contract_windows_with_genome_channels(runner):
    """FASTA + GTF (tss) + cpg_islands + blacklist: the windows carry the channels and the mask."""
    out = windows(runner, genome=True)
    for split in ("train.npz", "val.npz"):
        meta = read_pairs_meta(out[split])
        assert [(c["name"], c["render"]) for c in meta["channels"]] == [
            ("sequence", "gc_fraction"), ("sequence", "cpg_density"), ("sequence", "n_fraction"),
            ("tss", "decay"), ("cpg_islands", "overlap")]
        assert meta["masks"] == ["blacklist"] and set(meta["sequence_md5"]) >= {"chr1", "chr2"}
    assert read_pairs_meta(windows(runner)["train.npz"])["channels"] == []  # counts-only stays counts-only


def test_contract_nash_search(runner):
    assert search(runner).is_dir()


def test_contract_export_onnx(runner):
    assert onnx_model(runner).stat().st_size > 0


def test_contract_register_model(runner, tmp_path):
    skip_unless_available(["registry", "register"])
    out = runner.run("register_model", ["registry", "register"],
                     {"sim.search": search(runner), "val.npz": windows(runner)["val.npz"]},
                     {"meta.id": "sim", "prefix": "sim", "search": "sim.search", "val": "val.npz", "args": "",
                      "tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "model_name": "atac-denoiser-test"})
    assert "sim.registered.txt" in out


def test_contract_denoise(runner):
    assert {"sim.denoised.bw", "sim.peakprob.bw", "sim.peaks.narrowPeak"} <= set(denoised(runner))


def test_contract_denoise_with_genome_channels(runner):
    """A model trained on genome channels denoises with the staged FASTA and annotations, using them all
    (but the blacklist, which only kept training targets out)."""
    out = denoised(runner, genome=True)
    assert {"sim.denoised.bw", "sim.peakprob.bw", "sim.peaks.narrowPeak"} <= set(out)
    notes = [line for line in runner.stderr["denoise_genome"].splitlines() if "ignored" in line]
    assert len(notes) == 1 and "does not use annotation 'blacklist'" in notes[0]
    onnx = pytest.importorskip("onnx")
    from atacdenoise.denoise.contract import ModelContract
    metadata = {p.key: p.value for p in onnx.load(str(onnx_model(runner, genome=True))).metadata_props}
    contract = ModelContract.from_metadata(metadata)
    assert [spec.name for spec in contract.channel_specs] == ["sequence"] * 3 + ["tss", "cpg_islands"]


def test_contract_denoise_passes_files_a_counts_only_model_ignores(runner):
    """The pipeline always hands DENOISE the genome files: a counts-only model notes them and runs as before."""
    import numpy as np
    import pyBigWig
    out = denoised(runner, genome=False, files=True)
    note = runner.stderr["denoise_files"]
    assert "--fasta ignored" in note and "does not use annotation 'tss'" in note
    plain = denoised(runner)
    for name in ("sim.denoised.bw", "sim.peakprob.bw"):
        a, b = pyBigWig.open(str(out[name])), pyBigWig.open(str(plain[name]))
        assert np.array_equal(np.array(a.values("chr2", 0, 150_000)), np.array(b.values("chr2", 0, 150_000)),
                              equal_nan=True)
        a.close()
        b.close()


def test_contract_denoise_in_groups_and_merge_denoised(runner):
    """--denoise_chunks 2: DENOISE as group 1/2 and 2/2 (PREFIX.group<I>of<N>), MERGE_DENOISED over their files
    staged together: the output set of one DENOISE task, the same values and peaks."""
    import pyBigWig
    whole = denoised(runner)
    stage = {**staged_insertions(runner), "model.onnx": onnx_model(runner)}
    parts = {}
    for group in (1, 2):
        prefix = f"sim.group{group}of2"
        out = runner.run("denoise", ["denoise"], stage,
                         {**reads_values(prefix), "model": "model.onnx", "group_arg": f"--group {group}/2",
                          **genome_values()[1]}, task=f"denoise_group{group}")
        assert {f"{prefix}.denoised.bw", f"{prefix}.provenance.json"} <= set(out)
        parts.update({name: path for name, path in out.items() if name != "versions.yml"})
    proc = read_process(REPO / "modules" / "merge_denoised.nf")
    # the Groovy that finds the group prefixes among the staged files, as the module computes it
    assert ("def group_prefixes = parts.findAll { it.name.endsWith('.provenance.json') }.collect { it.name - "
            "'.provenance.json' }.sort().join(' ')") in proc.script_block
    merged = runner.run("merge_denoised", ["merge"], parts,
                        {"meta.id": "sim", "prefix": "sim", "args": "",
                         "group_prefixes": "sim.group1of2 sim.group2of2"})
    for track in ("sim.denoised.bw", "sim.peakprob.bw"):
        with pyBigWig.open(str(merged[track])) as a, pyBigWig.open(str(whole[track])) as b:
            assert a.chroms() == b.chroms()
            for chrom in b.chroms():
                assert a.intervals(chrom) == b.intervals(chrom), (track, chrom)
    assert merged["sim.peaks.narrowPeak"].read_bytes() == whole["sim.peaks.narrowPeak"].read_bytes()


def test_denoise_groups_are_gathered_and_only_the_merge_is_published():
    """main.nf fans DENOISE out by meta.group of meta.groups and keys the merge by sample; conf/modules.config
    publishes the merged set where one task's would be and hides the groups' files."""
    main = (REPO / "main.nf").read_text()
    assert "(1..chunks).collect { group -> [meta + [group: group, groups: chunks], insertions] }" in main
    assert "[groupKey(sample, meta.groups), [denoised, peakprob, peaks, provenance]]" in main
    assert re.search(r"if \(chunks > 1\) \{\s+MERGE_DENOISED\(groupsOfSample\(ch_denoised\)\)", main)
    proc = read_process(REPO / "modules" / "denoise.nf")
    assert 'def group_arg = meta.group ? "--group ${meta.group}/${meta.groups}" : \'\'' in proc.script_block
    assert 'meta.group ? "${meta.id}.group${meta.group}of${meta.groups}" : "${meta.id}"' in proc.script_block
    config = (REPO / "conf" / "modules.config").read_text()
    hidden = re.search(r"withName: 'DENOISE' \{.*?filename ==~ /(.*?)/ \? null", config, flags=re.S).group(1)
    assert re.fullmatch(hidden, "S1_REP1.group3of12.peaks.narrowPeak")
    assert not re.fullmatch(hidden, "S1_REP1.denoised.bw") and not re.fullmatch(hidden, "group1of2.bw")
    for name in ("DENOISE", "MERGE_DENOISED"):
        block = re.search(rf"withName: '{name}' \{{(.*?)\n    \}}", config, flags=re.S).group(1)
        assert 'path: { "${params.outdir}/denoise" }' in block, name


def test_contract_report(runner):
    den = denoised(runner)
    stage = {"d.bw": den["sim.denoised.bw"], "p.bw": den["sim.peakprob.bw"], "p.narrowPeak": den["sim.peaks.narrowPeak"],
             "prov.json": den["sim.provenance.json"], "noisy.bed.gz": insertions(runner), "chrom.sizes": sizes(runner)}
    values = {"meta.id": "sim", "prefix": "sim", "args": "", "denoised": "d.bw", "peakprob": "p.bw",
              "peaks": "p.narrowPeak", "provenance": "prov.json", "noisy": "noisy.bed.gz", "chrom_sizes": "chrom.sizes"}
    html = runner.run("report", ["report"], stage, values)["sim.report.html"].read_text()
    assert "library insertions" in html  # the depth denoise scaled by, from its provenance (issue 19)


def test_contract_qc(runner):
    """QC of the simulated BAM (staged with its index) with a GTF and peaks: JSON, both plots, MultiQC files."""
    sim = simulated(runner)
    stage = {"sim.bam": sim["sim.bam"], "sim.bam.bai": sim["sim.bam.bai"], "chrom.sizes": sizes(runner),
             "genes.gtf": annotation_files(runner)["tss"], "p.narrowPeak": peaks(runner)["sim.narrowPeak"]}
    values = {"meta.id": "sim", "prefix": "sim", "args": "", "input": "sim.bam", "chrom_sizes": "chrom.sizes",
              "gtf_arg": "--gtf genes.gtf", "peaks_arg": "--peaks p.narrowPeak"}
    out = runner.run("qc", ["qc"], stage, values)
    assert {"sim.qc.json", "sim.fragment_lengths.png", "sim.tss_profile.png",
            "sim.atacdenoise_qc_general_mqc.json"} <= set(out)
    qc = json.loads(out["sim.qc.json"].read_text())
    assert qc["n_insertions"] > 0 and 0 < qc["frip"] < 1 and qc["tss_enrichment"] is not None
    assert qc["fragment_length_histogram"] and qc["duplicates_method"]


def test_qc_runs_on_every_library_in_main():
    """Deep BAMs (FRiP vs their peaks), shallow twins (vs theirs) and denoised peaks (the shallow input in them)."""
    main = (REPO / "main.nf").read_text()
    proc = read_process(REPO / "modules" / "qc.nf")
    assert "def input = read_files.find { !it.name.endsWith('.bai') }" in proc.script_block
    assert "def gtf_arg = gtf ? \"--gtf ${gtf}\" : ''" in proc.script_block
    assert "def peaks_arg = peaks ? \"--peaks ${peaks}\" : ''" in proc.script_block
    assert re.search(r"QC\(ch_qc, ch_chrom_sizes, gtfInput\(\)\)", main)
    assert re.search(r"QC_SHALLOW\(ch_shallow\.join\(CALL_PEAKS_SHALLOW\.out\.peaks\), ch_chrom_sizes, gtfInput\(\)\)", main)
    assert re.search(r"QC_DENOISED\(ch_insertions\.join\(ch_denoised_peaks\), ch_chrom_sizes, gtfInput\(\)\)", main)
    assert ("ch_denoised_peaks = ch_denoised.map { meta, denoised, peakprob, peaks, provenance -> [meta, peaks] }"
            in main)
    modules_config = (REPO / "conf" / "modules.config").read_text()
    assert re.search(r"withName: 'QC_DENOISED' \{\s*ext\.prefix = \{ \"\$\{meta\.id\}\.denoised_peaks\" \}", modules_config)


def count_fastq_records(path: Path) -> int:
    with gzip.open(path, "rt") as fh:
        return sum(1 for _ in fh) // 4


def test_contract_cat_fastq(runner):
    """Two paired lanes (the simulated pair twice, staged lane?/NAME as Nextflow stages them) -> one pair, R1 with R1."""
    sim = simulated(runner)
    stage = {"lane1/sim_R1.fastq.gz": sim["sim_R1.fastq.gz"], "lane2/sim_R2.fastq.gz": sim["sim_R2.fastq.gz"],
             "lane3/sim_R1.fastq.gz": sim["sim_R1.fastq.gz"], "lane4/sim_R2.fastq.gz": sim["sim_R2.fastq.gz"]}
    values = {"meta.id": "sim", "prefix": "sim", "read1.join(' ')": "lane1/sim_R1.fastq.gz lane3/sim_R1.fastq.gz",
              "cat_read2": "cat_lanes lane2/sim_R2.fastq.gz lane4/sim_R2.fastq.gz > sim_2.merged.fastq.gz"}
    out = runner.run("cat_fastq", [], stage, values)
    n = count_fastq_records(sim["sim_R1.fastq.gz"])
    assert count_fastq_records(out["sim_1.merged.fastq.gz"]) == count_fastq_records(out["sim_2.merged.fastq.gz"]) == 2 * n
    with gzip.open(out["sim_1.merged.fastq.gz"], "rt") as merged, gzip.open(sim["sim_R1.fastq.gz"], "rt") as lane:
        assert merged.readline() == lane.readline()
    # the Groovy that splits the staged files into R1 and R2 lists: pairs in sheet order
    proc = read_process(REPO / "modules" / "cat_fastq.nf")
    assert "def read1 = meta.single_end ? files : files.collate(2).collect { it[0] }" in proc.script_block
    assert "def read2 = meta.single_end ? [] : files.collate(2).collect { it[1] }" in proc.script_block


def test_contract_samtools_merge(runner):
    import pysam
    sim = simulated(runner)
    stage = {"lane1/sim.bam": sim["sim.bam"], "lane2/sim.bam": sim["sim.bam"]}
    out = runner.run("samtools_merge", [], stage, {"meta.id": "sim", "prefix": "sim", "args": "",
                                                   "inputs": "lane1/sim.bam lane2/sim.bam"})
    with pysam.AlignmentFile(str(sim["sim.bam"])) as one, pysam.AlignmentFile(str(out["sim.bam"])) as merged:
        assert merged.mapped == 2 * one.mapped


def test_contract_multiqc(runner, tmp_path):
    """MultiQC reads the QC step's custom content and the collected software versions."""
    pytest.importorskip("multiqc")
    test_contract_qc(runner)
    qc = runner.done["qc"]
    versions = tmp_path / "atacdenoise_software_mqc_versions.yml"
    versions.write_text("ALIGN:\n  bowtie2: 2.5.4\n  samtools: '1.21'\n\nWorkflow:\n  atacdenoise: 0.1.0\n  Nextflow: 24.10.0\n")
    stage = {"1/sim.atacdenoise_qc_general_mqc.json": qc["sim.atacdenoise_qc_general_mqc.json"],
             "2/atacdenoise_software_mqc_versions.yml": versions}
    out = runner.run("multiqc", [], stage, {"args": ""})
    html = out["multiqc_report.html"].read_text()
    assert "bowtie2" in html and "2.5.4" in html
