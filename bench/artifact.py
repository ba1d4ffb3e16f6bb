"""Cold-start import of the artifact `sam build` produced, the way Lambda loads it.

What Lambda's python3.13 runtime does at a cold start, reproduced as closely as a machine
without Lambda allows:
* a fresh Python 3.13 interpreter (the runtime's version; bytecode is version-specific);
* only the runtime's own packages besides the artifact: a throwaway venv with boto3 at
  ``RUNTIME_BOTO3`` (the SDK Lambda's python3.13 runtime ships; Lambda's page says the
  version varies by region and runtime update, so it can be overridden);
* the artifact first on sys.path, as /var/task is, read-only for the interpreter: no
  bytecode written (``-B``, PYTHONDONTWRITEBYTECODE=1), so whatever bytecode the artifact
  lacks is compiled on every start, as in Lambda;
* tracing off (the template's default) and on.
The baseline, ``import boto3``, is measured in the same setup and the same run, the
variants taking turns. For comparison: the artifact without its build-time bytecode, and
with the X-Ray SDK added (what the ``[tracer]`` extra used to bring).
"""

from __future__ import annotations

import glob
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from budget_sync_local.lambda_runtime import function_spec
from budget_sync_local.templates import ROOT

BUILD_DIR = ROOT / ".aws-sam" / "build"
RUNTIME_VENV = ROOT / ".aws-sam" / "bench-runtime"
RUNTIME_BOTO3 = os.environ.get("RUNTIME_BOTO3", "1.40.4")
ROUNDS = 9


def python313() -> str:
    """As `make build` finds it: pyenv's 3.13 first, else python3.13 on PATH."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    found = candidates[-1] if candidates else shutil.which("python3.13")
    if found is None:
        raise SystemExit(
            "bench artifact: no python3.13 (the function's runtime); install it, e.g. with pyenv"
        )
    return found


def runtime_python() -> Path:
    """A venv with nothing but boto3 at the runtime's version (created once, then reused)."""
    python = RUNTIME_VENV / "bin" / "python"
    stamp = RUNTIME_VENV / f".boto3-{RUNTIME_BOTO3}"
    if not stamp.exists():
        shutil.rmtree(RUNTIME_VENV, ignore_errors=True)
        subprocess.run([python313(), "-m", "venv", str(RUNTIME_VENV)], check=True)
        installed = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"boto3=={RUNTIME_BOTO3}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if installed.returncode != 0:
            raise SystemExit(
                f"bench artifact: pip could not install boto3=={RUNTIME_BOTO3}:\n{installed.stderr}"
            )
        stamp.touch()
    return python


XRAY_DIR = ROOT / ".aws-sam" / "bench-xray"
XRAY_SDK = "aws-xray-sdk==2.15.0"


def xray_sdk_dir(python: Path) -> Path:
    """What the [tracer] extra would add to the package (the X-Ray SDK with its botocore and
    wrapt), installed for this machine (wrapt is native) and compiled as the build compiles."""
    stamp = XRAY_DIR / ".installed"
    if not stamp.exists():
        shutil.rmtree(XRAY_DIR, ignore_errors=True)
        for step in (
            [
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--target",
                str(XRAY_DIR),
                XRAY_SDK,
            ],
            ["-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(XRAY_DIR)],
        ):
            done = subprocess.run([str(python), *step], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"bench artifact: {' '.join(step[:3])} failed:\n{done.stderr}")
        stamp.touch()
    return XRAY_DIR


def _import_code(artifact: Path | tuple[Path, ...] | None, module: str) -> str:
    paths = (artifact,) if isinstance(artifact, Path) else artifact or ()
    path = "; ".join(f"sys.path.insert({i}, {str(p)!r})" for i, p in enumerate(paths))
    return f"import sys, time\n{path}\nt = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - t)\n"


def import_seconds(
    python: Path, variants: dict[str, tuple[Path | tuple[Path, ...] | None, str, dict[str, str]]]
) -> dict[str, float]:
    """Median over fresh interpreters of the time each variant's ``import module`` takes.
    The variants take turns in every round, so that the machine's load falls on all alike."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(ROUNDS):
            for name, (artifact, module, environment) in variants.items():
                lambda_like = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "PYTHONDONTWRITEBYTECODE": "1",
                    "AWS_REGION": "us-east-1",
                    "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_LAMBDA_FUNCTION_NAME": "bench",
                    **environment,
                }
                output = subprocess.run(
                    # -I: no user site, no cwd on sys.path; -B: no bytecode written (-I
                    # ignores PYTHONDONTWRITEBYTECODE, so it is said on the command line)
                    [str(python), "-I", "-B", "-c", _import_code(artifact, module)],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=cwd,
                    env=lambda_like,
                ).stdout
                samples[name].append(float(output.strip().splitlines()[-1]))
    return {name: statistics.median(values) for name, values in samples.items()}


def sizes(artifact: Path) -> tuple[int, int]:
    """Bytes unzipped, and zipped with deflate as `sam package` uploads it."""
    files = [p for p in sorted(artifact.rglob("*")) if p.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(artifact))
    return sum(p.stat().st_size for p in files), len(buffer.getvalue())


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def run() -> None:
    functions = ("UpdateFunction", "ReconcilerFunction")
    missing = [name for name in functions if not (BUILD_DIR / name).is_dir()]
    if missing:
        print(f"no artifact for {missing} in {BUILD_DIR}: run `make build` first (make bench does)")
        return
    python = runtime_python()
    version = subprocess.run(
        [str(python), "-c", "import sys, boto3; print(sys.version.split()[0], boto3.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    print(
        f"fresh Python {version[0]} interpreters, only boto3 {version[1]} besides the artifact "
        f"(the runtime's SDK), PYTHONDONTWRITEBYTECODE=1, median of {ROUNDS}"
    )
    variants: dict[str, tuple[Path | tuple[Path, ...] | None, str, dict[str, str]]] = {
        "boto3": (None, "boto3", {})
    }
    for name in functions:
        module = function_spec(name).handler.rpartition(".")[0]
        for tracing, disabled in (("off", "true"), ("on", "false")):
            variants[f"{name} {tracing}"] = (
                BUILD_DIR / name,
                module,
                {"POWERTOOLS_TRACE_DISABLED": disabled},
            )
    with tempfile.TemporaryDirectory() as scratch:
        # For comparison: the same artifact without the bytecode the build compiled.
        source_only = Path(scratch) / "UpdateFunction"
        shutil.copytree(
            BUILD_DIR / "UpdateFunction", source_only, ignore=shutil.ignore_patterns("__pycache__")
        )
        stream_module = variants["UpdateFunction off"][1]
        variants["no bytecode"] = (source_only, stream_module, {"POWERTOOLS_TRACE_DISABLED": "true"})
        with_sdk = (BUILD_DIR / "UpdateFunction", xray_sdk_dir(python))
        variants["with the SDK"] = (with_sdk, stream_module, {"POWERTOOLS_TRACE_DISABLED": "false"})
        seconds = import_seconds(python, variants)
    boto3_alone = seconds["boto3"]
    print(f"  import boto3                                   {boto3_alone * 1000:6.0f} ms   1.00x")
    for name in functions:
        module = variants[f"{name} off"][1]
        off, on = seconds[f"{name} off"], seconds[f"{name} on"]
        unzipped, zipped = sizes(BUILD_DIR / name)
        print(f"  {name} (import {module}), artifact {_mib(unzipped)} unzipped, {_mib(zipped)} zipped")
        print(
            f"    tracing off                                  {off * 1000:6.0f} ms   {off / boto3_alone:.2f}x boto3"
        )
        print(
            f"    tracing on (Lambda active tracing, no SDK)   {on * 1000:6.0f} ms   {on / boto3_alone:.2f}x boto3"
        )
    plain = seconds["no bytecode"]
    print(
        f"  UpdateFunction without the build's bytecode    {plain * 1000:6.0f} ms   {plain / boto3_alone:.2f}x boto3"
        "   (what a cold start costs when Lambda must compile every module)"
    )
    traced = seconds["with the SDK"]
    print(
        f"  UpdateFunction + the X-Ray SDK, tracing on   {traced * 1000:6.0f} ms   {traced / boto3_alone:.2f}x boto3"
        f"   ({XRAY_SDK} with its botocore: a subsegment per AWS call)"
    )


if __name__ == "__main__":
    run()
    sys.exit(0)
