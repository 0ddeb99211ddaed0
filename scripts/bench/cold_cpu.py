"""Benchmark: cold starts under the CPU the cloud really gives.

Each figure is measured under a CPU quota and, in the same run and interleaved, unconstrained:

- **Fargate**, 0.25 vCPU: ``python -m voice_task`` from process start (the local launcher's steps:
  a launching lease, then the process) to the loopback Discord emulator's first audio packet. Twice:
  with no ``.pyc`` anywhere (the image as first built: ``pip --no-compile`` and a read-only root, so
  every module, the standard library's included, compiles at each start) and with the unchecked-hash
  ``.pyc`` the image now builds (the same ``compileall`` into a ``PYTHONPYCACHEPREFIX`` tree).
- **Lambda**, at 512 MB (about 0.29 vCPU: a full vCPU is 1,769 MB) and 1,024 MB: a fresh
  interpreter importing the api handler **from the packaged zips** (``chalice package`` plus
  scripts/lambda_runtime.py, unpacked as /var/task and /opt, nothing else on the path), bootstrap,
  and the first signed ``/queue`` through Chalice's Lambda entry point against DynamoDB on a
  loopback moto server that runs in this process, outside the quota, over TLS with a test CA (so
  botocore's TLS set-up is counted). Twice again: the zips' ``.pyc`` ignored (as before) and used.

The quota is a cgroup: ``cpu.max`` on cgroup v2, ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` on v1,
joined by the child before it executes Python. If no cgroup is writable the script says so and
falls back to ``taskset`` on one CPU, reporting the CPU-seconds each start used (what a quota
stretches). Real YouTube extraction (yt-dlp solving JavaScript challenges) adds CPU that these
figures, which play loopback media, do not include.

    .venv/bin/python scripts/bench/cold_cpu.py [--voice-runs 3] [--lambda-runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``scripts.bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench._common import (
    FAKE_AWS_ENV,
    RESULT_MARKER,
    ROOT,
    add_source_paths,
    median,
    ms,
    print_header,
    print_reproduce,
    table,
)

FARGATE_VCPU = 0.25
LAMBDA_FULL_VCPU_MB = 1769
LAMBDA_MEMORIES = (512, 1024)
VOICE_TARGET_S = 5.0
LAMBDA_TARGET_S = 1.5
PERIOD_US = 100_000
TONE_HZ = 523
ARCH = "arm64"  # chalice_app/.chalice/config.json lambda_architecture


# --- CPU limits ---------------------------------------------------------------------------------


@dataclass
class CpuLimit:
    """Where a child runs: a cgroup with a CPU quota, ``taskset`` on one CPU, or unconstrained."""

    label: str
    vcpu: float | None
    procs_file: Path | None = None  # cgroup.procs of the quota group
    taskset_cpu: int | None = None
    cleanup: list[Path] = field(default_factory=list)

    def preexec(self) -> None:  # runs in the child between fork and exec
        if self.procs_file is not None:
            self.procs_file.write_text(str(os.getpid()))
        elif self.taskset_cpu is not None:
            os.sched_setaffinity(0, {self.taskset_cpu})

    def attach(self, pid: int) -> None:
        """For a child someone else started (the voice stack's): join it right after its exec."""
        if self.procs_file is not None:
            self.procs_file.write_text(str(pid))
        elif self.taskset_cpu is not None:
            os.sched_setaffinity(pid, {self.taskset_cpu})

    def close(self) -> None:
        for group in reversed(self.cleanup):
            with contextlib.suppress(OSError):
                group.rmdir()


def _cgroup_limit(label: str, vcpu: float) -> CpuLimit | str:
    """A quota group, or why there is none."""
    quota = int(vcpu * PERIOD_US)
    name = f"timmybot-bench-{os.getpid()}-{int(vcpu * 1000)}"
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").is_file() and "cpu" in (v2 / "cgroup.controllers").read_text().split():
        try:
            group = v2 / name
            group.mkdir()
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            return CpuLimit(label, vcpu, procs_file=group / "cgroup.procs", cleanup=[group])
        except OSError as exc:
            return f"cgroup v2 not writable ({exc})"
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").is_file() or v1.is_dir():
        try:
            group = v1 / name
            group.mkdir()
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
            return CpuLimit(label, vcpu, procs_file=group / "cgroup.procs", cleanup=[group])
        except OSError as exc:
            return f"cgroup v1 not writable ({exc})"
    return "no cgroup CPU controller mounted"


def make_limit(label: str, vcpu: float, notes: list[str]) -> CpuLimit:
    made = _cgroup_limit(label, vcpu)
    if isinstance(made, CpuLimit):
        mechanism = (
            "cgroup v2 cpu.max" if (Path("/sys/fs/cgroup") / "cgroup.controllers").is_file() else "cgroup v1 cfs quota"
        )
        notes.append(f"{label}: {mechanism} {int(vcpu * PERIOD_US)}/{PERIOD_US} µs")
        return made
    notes.append(
        f"{label}: {made}; FALLBACK taskset on CPU 0 (one full CPU, not {vcpu:g}): read the CPU-seconds column"
    )
    return CpuLimit(f"{label} (taskset fallback)", vcpu, taskset_cpu=0)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU of a live process so far (its own threads; not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- bytecode trees -----------------------------------------------------------------------------


def compiled_prefix(directory: Path, sources: list[Path]) -> Path:
    """A ``PYTHONPYCACHEPREFIX`` tree with an unchecked-hash .pyc for every module under ``sources``."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-x", "/(test|tests|idle_test)/", *map(str, sources)],
        env={**os.environ, "PYTHONPYCACHEPREFIX": str(directory)},
        check=False,  # a few third-party test files do not compile; what matters is every importable module
        capture_output=True,
    )  # fmt: skip
    return directory


# --- Fargate: the voice task --------------------------------------------------------------------


def voice_cold_starts(limits: list[CpuLimit], runs: int, tmp: Path) -> dict[tuple[str, str], list[tuple[float, float]]]:
    from tests.support.emulator import DiscordEmulator  # noqa: PLC0415
    from tests.support.media import MediaServer  # noqa: PLC0415
    from tests.support.voice_stack import VoiceStack  # noqa: PLC0415
    from timmybot.config import Settings  # noqa: PLC0415

    paths = sysconfig.get_paths()
    empty = tmp / "pyc-none"
    empty.mkdir(parents=True)
    image = compiled_prefix(
        tmp / "pyc-image",
        [Path(paths["stdlib"]), Path(paths["purelib"]), ROOT / "layers" / "core" / "python", ROOT / "voice_task"],
    )
    modes = {"no .pyc (before)": empty, ".pyc (image now)": image}
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {(l.label, m): [] for l in limits for m in modes}  # noqa: E741
    with DiscordEmulator() as emulator, MediaServer() as media:
        stack = VoiceStack(emulator, media, tmp, TIMMYBOT_TICK_S=str(Settings().tick_s), TIMMYBOT_DATA_DIR=str(tmp),
                           TIMMYBOT_STRICT_STATES="false")  # fmt: skip
        try:
            entry = stack.tone_entry(TONE_HZ, 4.0)
            keys = list(samples)
            for index in range(runs):
                shift = index % len(keys)
                for limit_label, mode in keys[shift:] + keys[:shift]:
                    limit = next(lim for lim in limits if lim.label == limit_label)
                    guild = emulator.add_guild(f"Cold {index} {limit_label} {mode}")
                    _add_listener(emulator, guild)
                    gid = str(guild.id)
                    stack.enqueue(gid, entry, voice_channel_id=str(guild.voice_channel_id),
                                  text_channel_id=str(guild.text_channel_id))  # fmt: skip
                    _respect_identify_spacing(emulator)
                    started = time.monotonic()
                    task = stack.launch(gid, PYTHONPYCACHEPREFIX=str(modes[mode]), PYTHONDONTWRITEBYTECODE="1")
                    limit.attach(task.process.pid)
                    first = stack.wait_for_audio(gid, since=started, timeout=90, packets=1) - started
                    cpu = proc_cpu_s(task.process.pid)
                    samples[(limit_label, mode)].append((first, cpu))
                    stack.store.stop(gid)
                    task.wait(timeout=30)
        finally:
            stack.close()
    return samples


def _respect_identify_spacing(emulator: Any) -> None:
    from scripts.bench.voice import _respect_identify_spacing as spacing  # noqa: PLC0415

    spacing(emulator)


def _add_listener(emulator: Any, guild: Any) -> None:
    from scripts.bench.voice import _add_listener as add  # noqa: PLC0415

    add(emulator, guild)


# --- Lambda: the api from its zips --------------------------------------------------------------


def unpack_zips(tmp: Path) -> tuple[Path, Path, list[str]]:
    from scripts import deploy  # noqa: PLC0415
    from tests.support.packaged import _app_copy  # noqa: PLC0415

    out = tmp / "package"
    # The zips do not depend on the merged template; the committed one keeps a half-edited working
    # tree from stopping the benchmark.
    tmp.mkdir(parents=True, exist_ok=True)
    committed = tmp / "template.yaml"
    committed.write_bytes(subprocess.run(["git", "show", "HEAD:infra/template.yaml"], cwd=ROOT, capture_output=True,
                                         check=True).stdout)  # fmt: skip
    deploy.MERGE_TEMPLATE = committed
    deploy.chalice_package("dev", out, app_dir=_app_copy(tmp))
    task, opt = tmp / "var" / "task", tmp / "opt"
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        archive.extractall(task)
    for layer in ("layer-deployment.zip", deploy.CORE_LAYER_ZIP):
        with zipfile.ZipFile(out / layer) as archive:
            archive.extractall(opt)
    return task, opt, _host_native_packages(opt / "python" / "lib" / "python3.11" / "site-packages")


def _host_native_packages(site: Path) -> list[str]:
    """The layer's wheels are built for the Lambda's architecture; where a package's extension module
    cannot load here, that package (only) is replaced by this machine's build of it, compiled the same way."""
    here = Path(sys.executable).resolve().read_bytes()[18:20]
    host_site = Path(sysconfig.get_paths()["purelib"])
    replaced: set[str] = set()
    for extension in site.rglob("*.so"):
        if extension.read_bytes()[18:20] != here:
            replaced.add(extension.relative_to(site).parts[0])
    for name in sorted(replaced):
        if (site / name).is_file():  # a top-level extension module, e.g. _cffi_backend.<tag>.so
            module = name.split(".", 1)[0]
            builds = sorted(host_site.glob(f"{module}.*.so"))
            if not builds:
                raise RuntimeError(f"{module} has no build for this machine in {host_site}")
            (site / name).unlink()
            for build in builds:
                shutil.copy2(build, site / build.name)
            continue
        if not (host_site / name).is_dir():
            raise RuntimeError(f"{name} has no build for this machine in {host_site}")
        shutil.rmtree(site / name)
        shutil.copytree(host_site / name, site / name, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
                        str(site / name)], check=True)  # fmt: skip
    return sorted(replaced)


@contextlib.contextmanager
def moto_over_tls(tmp: Path) -> Iterator[tuple[str, Path]]:
    """moto's server app behind a TLS listener on loopback, in this process; yields (endpoint, CA file)."""
    import logging  # noqa: PLC0415

    from moto.moto_server.threaded_moto_server import MotoRequestHandler  # type: ignore[attr-defined]  # noqa: PLC0415
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: PLC0415
    from werkzeug.serving import make_server  # noqa: PLC0415

    from tests.support.emulator.tls import make_tls  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    tls = make_tls(tmp / "moto-tls")
    server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), True,
                         request_handler=MotoRequestHandler, ssl_context=tls.server_context())  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_port}", tls.ca_file
    finally:
        server.shutdown()


def run_limited(code: str, env: dict[str, str], limit: CpuLimit) -> tuple[dict[str, Any], float, float]:
    """``python -S -c code`` in ``limit``; returns (its result line, wall from spawn to answer, CPU-seconds)."""
    spawned = time.time()
    process = subprocess.Popen([sys.executable, "-S", "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=limit.preexec)  # fmt: skip # noqa: PLW1509
    out, err = process.communicate(timeout=180)
    if process.returncode != 0:
        raise RuntimeError(f"cold child failed ({process.returncode}):\n{err[-3000:]}")
    line = next(x for x in reversed(out.splitlines()) if x.startswith(RESULT_MARKER))
    result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
    if result.get("status") != 200:
        raise RuntimeError(f"cold child answered {result.get('status')}:\n{out[-3000:]}\n{err[-3000:]}")
    return result, float(result["answered_time"]) - spawned, float(result["cpu_s"])


_LAMBDA_CHILD = """\
import time
top_time = time.time()
import os, sys
sys.path[:0] = os.environ["BENCH_PATH"].split(os.pathsep)
top = time.perf_counter()
import app as api
imported = time.perf_counter()
api.app_services.get()
bootstrapped = time.perf_counter()
import json
event = json.loads(os.environ["BENCH_EVENT"])
response = api.app(event, None)
answered = time.perf_counter()
answered_time = time.time()
usage = os.times()
print({marker!r} + json.dumps({{
    "top_time": top_time, "answered_time": answered_time,
    "import_s": imported - top, "bootstrap_s": bootstrapped - imported, "request_s": answered - bootstrapped,
    "cpu_s": usage.user + usage.system, "status": response["statusCode"], "body": response["body"],
}}))
"""


def lambda_cold_starts(
    limits: list[CpuLimit], runs: int, tmp: Path, notes: list[str]
) -> dict[tuple[str, str], list[dict[str, float]]]:
    from scripts.bench.first_response import api_gateway_event, check_answer, seed, settings_env, signed  # noqa: PLC0415
    from tests.support.signing import Signer, make_settings  # noqa: PLC0415

    task, opt, replaced = unpack_zips(tmp)
    if replaced:
        notes.append(
            f"Lambda: the layer's {', '.join(replaced)} replaced by this machine's build (the layer's is {ARCH})"
        )
    bench_path = os.pathsep.join([str(task), str(opt / "python"), str(opt / "python/lib/python3.11/site-packages")])
    stdlib_only = compiled_prefix(tmp / "pyc-stdlib", [Path(sysconfig.get_paths()["stdlib"])])
    # before: the runtime's standard library has bytecode, the zips had none; now: the zips' own .pyc
    modes: dict[str, dict[str, str]] = {
        "zips without .pyc (before)": {"PYTHONPYCACHEPREFIX": str(stdlib_only)},
        "zips with .pyc (now)": {},
    }
    signer = Signer()
    samples: dict[tuple[str, str], list[dict[str, float]]] = {(l.label, m): [] for l in limits for m in modes}  # noqa: E741
    with moto_over_tls(tmp) as (endpoint, ca_file):
        os.environ["AWS_CA_BUNDLE"] = str(ca_file)
        settings = make_settings(tmp, signer, store_backend="dynamodb", aws_endpoint_url=endpoint,
                                 dynamodb_table="timmybot-bench-cold")  # fmt: skip
        seed(settings)
        code = _LAMBDA_CHILD.format(marker=RESULT_MARKER)
        keys = list(samples)
        for index in range(runs + 1):  # the first round warms the page cache and is not a sample
            shift = index % len(keys)
            for limit_label, mode in keys[shift:] + keys[:shift]:
                limit = next(lim for lim in limits if lim.label == limit_label)
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin"),
                    **FAKE_AWS_ENV,
                    **settings_env(settings),
                    "AWS_CA_BUNDLE": str(ca_file),
                    "PYTHONDONTWRITEBYTECODE": "1",
                    "BENCH_PATH": bench_path,
                    "BENCH_EVENT": json.dumps(api_gateway_event(signed(signer, "queue"))),
                    **modes[mode],
                }
                result, wall, cpu = run_limited(code, env, limit)
                check_answer("queue", int(result["status"]), str(result["body"]))
                if index:
                    samples[(limit_label, mode)].append({**result, "wall_s": wall, "cpu_s": cpu})
    return samples


# --- report -------------------------------------------------------------------------------------


def _verdict(value: float, target: float) -> str:
    return "within" if value <= target else "OVER"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice-runs", type=int, default=3, help="cold voice tasks per (CPU, bytecode) row")
    parser.add_argument("--lambda-runs", type=int, default=5, help="cold api processes per (memory, bytecode) row")
    parser.add_argument("--skip-voice", action="store_true")
    parser.add_argument("--skip-lambda", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smoke sizes: 1 voice run, 1 Lambda run")
    args = parser.parse_args(argv)
    voice_runs, lambda_runs = (1, 1) if args.quick else (args.voice_runs, args.lambda_runs)
    for name in [n for n in os.environ if n.startswith("TIMMYBOT_")] + ["AWS_PROFILE"]:
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS_ENV)
    add_source_paths()
    print_header("cold starts under a CPU quota (Fargate 0.25 vCPU, Lambda 512/1024 MB)",
                 f"--voice-runs {voice_runs} --lambda-runs {lambda_runs}")  # fmt: skip
    notes: list[str] = []
    made: list[CpuLimit] = []
    try:
        with tempfile.TemporaryDirectory(prefix="timmybot-bench-cold-") as tmp_name:
            tmp = Path(tmp_name)
            if not args.skip_voice:
                free = CpuLimit("unconstrained", None)
                fargate = make_limit(f"Fargate {FARGATE_VCPU:g} vCPU", FARGATE_VCPU, notes)
                made.append(fargate)
                voice = voice_cold_starts([free, fargate], voice_runs, tmp / "voice")
                print(f"\nvoice task: process start → first packet ({voice_runs} per row, interleaved; medians)")
                rows = [["CPU", "bytecode", "first packet", "max", "task CPU-seconds", f"≤ {VOICE_TARGET_S:g} s"]]
                for (label, mode), runs_ in voice.items():
                    firsts = [r[0] for r in runs_]
                    cpu = median([r[1] for r in runs_])
                    judged = _verdict(max(firsts), VOICE_TARGET_S) if label != "unconstrained" else "-"
                    rows.append([label, mode, ms(median(firsts)), ms(max(firsts)), f"{cpu:.2f} s", judged])
                table(rows)
            if not args.skip_lambda:
                free = CpuLimit("unconstrained", None)
                limits = [free]
                for memory in LAMBDA_MEMORIES:
                    limit = make_limit(f"Lambda {memory} MB", memory / LAMBDA_FULL_VCPU_MB, notes)
                    made.append(limit)
                    limits.append(limit)
                api = lambda_cold_starts(limits, lambda_runs, tmp / "lambda", notes)
                print(f"\napi Lambda from the packaged zips: first signed /queue on DynamoDB over TLS "
                      f"({lambda_runs} per row, interleaved; medians)")  # fmt: skip
                rows = [["CPU", "bytecode", "import", "bootstrap", "first /queue", "spawn → answer", "CPU-seconds",
                         f"≤ {LAMBDA_TARGET_S:g} s"]]  # fmt: skip
                for (label, mode), lambda_runs_ in api.items():
                    total = median([r["wall_s"] for r in lambda_runs_])
                    phases = [
                        ms(median([r[k] for r in lambda_runs_])) for k in ("import_s", "bootstrap_s", "request_s")
                    ]
                    cpu = median([r["cpu_s"] for r in lambda_runs_])
                    judged = _verdict(total, LAMBDA_TARGET_S) if label != "unconstrained" else "-"
                    rows.append([label, mode, *phases, ms(total), f"{cpu:.2f} s", judged])
                table(rows)
    finally:
        for limit in made:
            limit.close()
    print("\nnotes:")
    for note in notes:
        print(f"  - {note}")
    print("  - real YouTube extraction (yt-dlp's JavaScript challenges) adds CPU these loopback figures do not include")
    print_reproduce(f".venv/bin/python scripts/bench/cold_cpu.py --voice-runs {voice_runs} --lambda-runs {lambda_runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
