"""Diagnosis throughput and peak memory on the shared corpus, beside Debian's Sisimai 4.25.

    python benchmarks/engine_throughput.py [--corpus DIR] [--passes N] [--runs N] [--no-peer]
                                           [--startup FILE]

Every file of the corpus (`maildir/**` and `mailbox/*` under DIR, default
../shared/corpus/sisimai) is read and diagnosed PASSES times in a fresh child process, for
delistbot (what `delistbot diagnose --no-dns` does: read, parse, diagnose; no DNS) and for
Sisimai (Sisimai::Mail -> Sisimai::Message -> Sisimai::Data, as Sisimai->make does, through
benchmarks/sisimai_driver.pl). The two take turns, run by run; for each, the median of RUNS
runs of:

  steady msgs/s   messages of passes 2..N over the time they took (first pass is warm-up)
  msgs/CPU-s      the same messages over the CPU time (user + system) the child spent on them:
                  on a machine shared with other work this moves much less than wall time
  whole msgs/s    all messages over the child's wall time, start-up included
  peak MiB        the child's maximum resident set size (ru_maxrss from wait4)

Then the start-up of one command on one file (`delistbot diagnose --no-dns FILE` against
`perl -MSisimai -e 'Sisimai->make(FILE)'`), median wall time of 15 runs.

Sisimai comes from apt (`libsisimai-perl`); when it is missing the script installs it if it
can (root and apt-get), otherwise it prints why and measures delistbot alone. The target (issue
"bounce diagnosis engine"): delistbot at least 2x Sisimai's messages/s and at most 60 MiB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DRIVER = HERE / "sisimai_driver.pl"
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "sisimai"
TARGET_RATIO = 2.0
TARGET_MIB = 60.0


def child(passes: int) -> None:
    """Runs in the measured process: only what `delistbot diagnose --no-dns` needs is imported."""
    sys.path.insert(0, str(ROOT))
    from bot.service.diagnose import diagnose_bytes

    paths = [line for line in sys.stdin.read().splitlines() if line]

    def one_pass() -> tuple[int, int]:
        messages = records = 0
        for path in paths:
            for diagnosis in diagnose_bytes(Path(path).read_bytes(), path):
                messages += 1
                records += len(diagnosis.recipients)
        return messages, records

    messages, records = one_pass()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(passes - 1):
        one_pass()
    print(f"messages={messages} records={records} steady_seconds={time.perf_counter() - start:.6f} "
          f"steady_cpu_seconds={time.process_time() - cpu_start:.6f}")


@dataclass(frozen=True)
class Run:
    messages: int
    records: int
    steady_rate: float
    cpu_rate: float
    whole_rate: float
    peak_mib: float


def run_child(command: list[str], files: str, passes: int) -> Run:
    """Start, wait with wait4 (for this child's own rusage), and read its figures."""
    with tempfile.TemporaryFile("w+") as stdin, tempfile.TemporaryFile("w+") as stdout:
        stdin.write(files)
        stdin.seek(0)
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdin=stdin, stdout=stdout)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        out = stdout.read()
    if proc.returncode:
        raise SystemExit(f"{' '.join(command[:2])} failed (exit {proc.returncode}): {out.strip()}")
    fields = dict(item.split("=", 1) for item in out.split())
    messages, steady = int(fields["messages"]), float(fields["steady_seconds"])
    cpu = float(fields["steady_cpu_seconds"])
    return Run(messages=messages, records=int(fields["records"]),
               steady_rate=messages * (passes - 1) / steady if steady else 0.0,
               cpu_rate=messages * (passes - 1) / cpu if cpu else 0.0,
               whole_rate=messages * passes / wall, peak_mib=usage.ru_maxrss / 1024)


def median_run(runs: list[Run]) -> Run:
    return Run(messages=runs[0].messages, records=runs[0].records,
               steady_rate=statistics.median(r.steady_rate for r in runs),
               cpu_rate=statistics.median(r.cpu_rate for r in runs),
               whole_rate=statistics.median(r.whole_rate for r in runs),
               peak_mib=statistics.median(r.peak_mib for r in runs))


def corpus_files(corpus: Path) -> list[Path]:
    files = [p for p in sorted((corpus / "maildir").rglob("*")) if p.is_file()]
    files += [p for p in sorted((corpus / "mailbox").glob("*")) if p.is_file()]
    return files


def sisimai_ready() -> str | None:
    """None when Sisimai can run, else why not (after trying to install it)."""
    if shutil.which("perl") is None:
        return "perl is not installed"
    check = ["perl", "-MSisimai", "-e", "1"]
    if subprocess.run(check, capture_output=True).returncode == 0:
        return None
    if shutil.which("apt-get") is None:
        return "libsisimai-perl is not installed and apt-get is not available"
    if os.geteuid() != 0:
        return "libsisimai-perl is not installed (run: sudo apt-get install -y libsisimai-perl)"
    print("installing libsisimai-perl with apt-get ...", file=sys.stderr)
    install = subprocess.run(["apt-get", "install", "-y", "libsisimai-perl"], capture_output=True,
                             text=True)
    if install.returncode != 0 or subprocess.run(check, capture_output=True).returncode != 0:
        return f"apt-get install libsisimai-perl failed: {install.stderr.strip()[-200:]}"
    return None


def sisimai_version() -> str:
    out = subprocess.run(["perl", "-MSisimai", "-e", "print Sisimai->version"], capture_output=True,
                         text=True)
    return out.stdout.strip() or "?"


def startup_seconds(command: list[str], runs: int = 15) -> float:
    subprocess.run(command, capture_output=True)  # warm the page cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def delistbot_command() -> list[str]:
    script = Path(sys.executable).parent / "delistbot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                        help="the corpus directory holding maildir/ and mailbox/")
    parser.add_argument("--passes", type=int, default=6, help="passes over the corpus per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool (the median is shown)")
    parser.add_argument("--no-peer", action="store_true", help="measure delistbot alone")
    parser.add_argument("--startup", type=Path, default=ROOT / "examples" / "seed-bounce.txt",
                        help="the file for the start-up measurement")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.passes)
        return 0
    if args.passes < 2:
        parser.error("--passes must be at least 2 (the first pass is warm-up)")
    files = corpus_files(args.corpus)
    if not files:
        print(f"no corpus files under {args.corpus} (maildir/, mailbox/): nothing to measure")
        return 2
    listing = "\n".join(str(p) for p in files) + "\n"
    size = sum(p.stat().st_size for p in files)
    print(f"corpus: {len(files)} files, {size / 1024:.0f} KiB ({args.corpus}); "
          f"{args.passes} passes per run, median of {args.runs} runs, {os.cpu_count()} CPUs")

    tools: list[tuple[str, list[str]]] = [
        ("delistbot", [sys.executable, str(Path(__file__).resolve()), "--child",
                       "--passes", str(args.passes)]),
    ]
    why_not = None if not args.no_peer else "--no-peer"
    if not args.no_peer:
        why_not = sisimai_ready()
    if why_not is None:
        tools.append((f"Sisimai {sisimai_version()}", ["perl", str(DRIVER), str(args.passes)]))
    else:
        print(f"Sisimai skipped: {why_not}")

    # The tools take turns run by run, so a change in the machine's load during the measurement
    # weighs on both alike.
    runs: dict[str, list[Run]] = {name: [] for name, _ in tools}
    for _ in range(args.runs):
        for name, command in tools:
            runs[name].append(run_child(command, listing, args.passes))
    results = {name: median_run(measured) for name, measured in runs.items()}

    print(f"\n{'':<18}{'messages':>9}{'records':>9}{'steady msgs/s':>15}{'msgs/CPU-s':>12}"
          f"{'whole msgs/s':>14}{'peak MiB':>10}")
    for name, r in results.items():
        print(f"{name:<18}{r.messages:>9}{r.records:>9}{r.steady_rate:>15,.0f}{r.cpu_rate:>12,.0f}"
              f"{r.whole_rate:>14,.0f}{r.peak_mib:>10.1f}")

    ours = results["delistbot"]
    peer = next((r for n, r in results.items() if n != "delistbot"), None)
    if peer:
        ratio = ours.steady_rate / peer.steady_rate
        whole = ours.whole_rate / peer.whole_rate
        cpu = ours.cpu_rate / peer.cpu_rate
        print(f"\ndelistbot / Sisimai: {ratio:.2f}x steady, {cpu:.2f}x per CPU-second, "
              f"{whole:.2f}x whole-process "
              f"(target >= {TARGET_RATIO:.0f}x); peak {ours.peak_mib:.1f} MiB (target <= {TARGET_MIB:.0f})")

    if args.startup.is_file():
        print(f"\nstart-up, one file ({args.startup.name}), median of 15:")
        ours_s = startup_seconds([*delistbot_command(), "diagnose", "--no-dns", str(args.startup)])
        print(f"  delistbot diagnose --no-dns   {ours_s * 1000:6.0f} ms")
        if why_not is None:
            perl = ["perl", "-MSisimai", "-e", "Sisimai->make(shift, delivered => 1)", str(args.startup)]
            print(f"  perl -MSisimai (make)         {startup_seconds(perl) * 1000:6.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
