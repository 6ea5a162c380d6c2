"""The command line as an analyst meets it: whole processes, start-up included, against peers.

Every figure is a whole process started from here (``subprocess``), its wall time read around
it and its processor time (user + system) from the operating system's accounting of the
finished child. The commands of a case run in rounds, each once a round in the same order, and
every command runs every round; the tables give each command's median round (the best and the
spread beside it). Every case checks that the answers agree before it is timed.

Cases:

- **start-up**: ``auptimate --help`` and ``auptimate top-investors`` on a 10-row CSV file,
  against a bare ``python -c pass`` and a Python process that imports polars and ranks the same
  file.
- **top investors** on a CSV file of the syndicate-style header (1M rows, 100k investors, 5k
  pools; ``--big`` adds 10M rows): ``auptimate top-investors`` (every row checked, exact
  totals) against the DuckDB command line (``duckdb -c "SELECT ... FROM read_csv(...)"``,
  amounts read as ``DECIMAL(18, 2)``: exact sums, nothing checked), polars in a Python process
  (amounts as ``Decimal(18, 2)``) and DuckDB in a Python process. The top 5 (ids, pools and
  totals) must be equal.
- **monitor** on a 1M-row file from ``auptimate generate --anomalies``: ``auptimate monitor``
  against ``benchmarks/peer_monitor.py`` (the two rules hand-written over per-pool deques). The
  alerts (rule, state, pool, transaction) must be equal.

Run ``python -m benchmarks.bench_cli`` (1M rows), ``--quick`` (100k rows) or ``--big`` (adds
10M rows for top investors). Results go to benchmarks/results/cli.md and cli.json (another
folder with ``--out``).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
BRIEF_HEADER = "investor_id,syndicate_id,transaction_amount,transaction_date\n"

RANK_SQL = (
    "SELECT investor_id, COUNT(DISTINCT syndicate_id) AS pools, SUM(transaction_amount) AS total "
    "FROM read_csv('{path}', types = {{'transaction_amount': 'DECIMAL(18, 2)'}}) "
    "GROUP BY investor_id ORDER BY pools DESC, total DESC, investor_id LIMIT 5"
)
POLARS_PEER = """\
import sys
import polars as pl
top = (pl.scan_csv(sys.argv[1], schema_overrides={"transaction_amount": pl.Decimal(18, 2)})
       .group_by("investor_id")
       .agg(pl.col("syndicate_id").n_unique().alias("pools"),
            pl.col("transaction_amount").sum().alias("total"))
       .sort(["pools", "total", "investor_id"], descending=[True, True, False])
       .head(5).collect())
for investor, pools, total in top.iter_rows():
    print(f"{investor},{pools},{total}")
"""
DUCKDB_PEER = """\
import sys
import duckdb
connection = duckdb.connect()
connection.execute("SET enable_progress_bar = false")
for investor, pools, total in connection.sql(sys.argv[2].format(path=sys.argv[1])).fetchall():
    print(f"{investor},{pools},{total}")
"""

Answer = list[tuple[str, ...]]


def script(name: str) -> str:
    """An installed console script of this interpreter (not a shim that finds one)."""
    path = Path(PYTHON).parent / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed")
    return found


def duckdb_cli() -> str | None:
    """The DuckDB command line: the binary the duckdb-cli package ships (its console script
    is a Python wrapper around it), else a ``duckdb`` on the PATH."""
    spec = importlib.util.find_spec("duckdb_cli")
    if spec is not None and spec.submodule_search_locations:
        binary = Path(next(iter(spec.submodule_search_locations))) / "duckdb"
        if binary.exists():
            return str(binary)
    return shutil.which("duckdb")


def compile_package() -> None:
    """Compile the package's modules to bytecode, as installing a package does. An editable
    install run with PYTHONDONTWRITEBYTECODE set never writes it, and every run of ours would
    compile our modules from source while the peers' libraries come compiled."""
    spec = importlib.util.find_spec("auptimate_core")
    assert spec is not None and spec.submodule_search_locations
    for folder in spec.submodule_search_locations:
        if not compileall.compile_dir(folder, quiet=1):
            raise SystemExit(f"could not compile {folder}")


# -- data ------------------------------------------------------------------------------------


def write_brief(path: Path, rows: int, investors: int = 100_000, pools: int = 5_000,
                seed: int = 7) -> None:
    """A syndicate-style CSV file: uniform investors and pools, lognormal amounts in cents."""
    rng = random.Random(seed)
    days = [(date(2024, 1, 1) + timedelta(days=i)).isoformat() for i in range(730)]
    with path.open("w", newline="") as handle:
        handle.write(BRIEF_HEADER)
        lines: list[str] = []
        for _ in range(rows):
            cents = int(rng.lognormvariate(11, 1.2)) + 100
            lines.append(f"inv{rng.randrange(investors):06d},syn{rng.randrange(pools):05d},"
                         f"{cents // 100}.{cents % 100:02d},{days[rng.randrange(730)]}\n")
            if len(lines) == 100_000:
                handle.writelines(lines)
                lines = []
        handle.writelines(lines)


def write_generated(path: Path, rows: int) -> None:
    """``auptimate generate --anomalies`` (the library's synthetic stream)."""
    subprocess.run([script("auptimate"), "generate", "--out", str(path), "--transactions",
                    str(rows), "--anomalies", "--seed", "0"], check=True, capture_output=True)


# -- running ---------------------------------------------------------------------------------


def run(command: Sequence[str]) -> tuple[float, float, str]:
    """Wall seconds, processor seconds (user + system) and standard output of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {done.returncode}: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def alternate(commands: dict[str, list[str]], rounds: int) -> dict[str, dict[str, Any]]:
    """Every command once a round, in the order given, for ``rounds`` rounds: each one's
    median, best and worst wall seconds, median processor seconds, and every round."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            wall, cpu, _ = run(command)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return {name: {"seconds": statistics.median(walls[name]), "best": min(walls[name]),
                   "worst": max(walls[name]), "cpu_seconds": statistics.median(cpus[name]),
                   "rounds": [round(w, 4) for w in walls[name]]} for name in commands}


def agree(commands: dict[str, list[str]], parse: Callable[[str, str], Answer]
          ) -> dict[str, bool]:
    """Run each command once (untimed: a warm-up too) and whether its answer is ours (the
    first command's)."""
    answers = {name: parse(name, run(command)[2]) for name, command in commands.items()}
    ours = next(iter(answers.values()))
    if not ours:
        raise RuntimeError("our command gave no answer")
    return {name: answer == ours for name, answer in answers.items()}


def ranking_of(name: str, text: str) -> Answer:
    """The top 5 as (id, pools, total) whatever the command printed (CSV lines; ours with a
    header)."""
    rows = [line.split(",") for line in text.strip().splitlines()]
    if rows and rows[0][0] == "investor_id":
        rows = rows[1:]
    if any(len(row) != 3 for row in rows):
        raise RuntimeError(f"{name} printed something else than a ranking: {text[:500]!r}")
    return [(inv, str(int(pools)), str(Decimal(total).normalize())) for inv, pools, total in rows]


def alerts_of(name: str, text: str) -> Answer:
    """The alerts as (rule, state, pool, transaction): ours from JSON lines, the peer's from
    its CSV lines."""
    if text.startswith("{"):
        return [(a["rule"], a["state"], a["pool_id"], a["transaction_id"])
                for a in map(json.loads, text.splitlines())]
    return [tuple(line.split(",")) for line in text.splitlines()]


# -- cases -----------------------------------------------------------------------------------


def startup_case(folder: Path, rounds: int) -> dict[str, Any]:
    small = folder / "small.csv"
    write_brief(small, 10, investors=6, pools=4)
    auptimate = script("auptimate")
    commands = {
        "auptimate --help": [auptimate, "--help"],
        "auptimate top-investors (10 rows)": [auptimate, "top-investors", str(small),
                                              "--format", "csv"],
        "python -c pass": [PYTHON, "-c", "pass"],
    }
    rankers = {"auptimate top-investors (10 rows)": commands["auptimate top-investors (10 rows)"]}
    if importlib.util.find_spec("polars") is not None:
        commands["python + import polars + query (10 rows)"] = [PYTHON, "-c", POLARS_PEER,
                                                                str(small)]
        rankers["python + import polars + query (10 rows)"] = commands[
            "python + import polars + query (10 rows)"]
    same = agree(rankers, ranking_of)
    peers = alternate(commands, rounds)
    bare = peers["python -c pass"]["seconds"]
    for entry in peers.values():
        entry["over_bare_python"] = entry["seconds"] - bare
    print_case("start-up", peers)
    return {"peers": peers, "same_answer": same}


def ranking_case(path: Path, rows: int, rounds: int) -> dict[str, Any]:
    commands = {"auptimate top-investors": [script("auptimate"), "top-investors", str(path),
                                            "--format", "csv"]}
    sql = RANK_SQL.format(path=path)
    cli = duckdb_cli()
    if cli is not None:
        commands["duckdb CLI (DECIMAL sums)"] = [cli, "-csv", "-noheader", "-c", sql]
    if importlib.util.find_spec("polars") is not None:
        commands["polars in Python (Decimal sums)"] = [PYTHON, "-c", POLARS_PEER, str(path)]
    if importlib.util.find_spec("duckdb") is not None:
        commands["duckdb in Python (DECIMAL sums)"] = [PYTHON, "-c", DUCKDB_PEER, str(path),
                                                      RANK_SQL]
    same = agree(commands, ranking_of)
    peers = alternate(commands, rounds)
    print_case(f"top-investors, {rows:,} rows", peers)
    return {"rows": rows, "peers": peers, "same_top5": same}


def monitor_case(path: Path, rows: int, rounds: int) -> dict[str, Any]:
    commands = {
        "auptimate monitor": [script("auptimate"), "monitor", str(path), "--format", "jsonl"],
        "hand-written script (csv, Decimal, deques)": [PYTHON, str(HERE / "peer_monitor.py"),
                                                       str(path)],
    }
    same = agree(commands, alerts_of)
    alerts = len(alerts_of("", run(commands["auptimate monitor"])[2]))
    peers = alternate(commands, rounds)
    print_case(f"monitor, {rows:,} rows", peers)
    return {"rows": rows, "alerts": alerts, "peers": peers, "same_alerts": same}


def print_case(title: str, peers: dict[str, dict[str, Any]]) -> None:
    print(f"  {title}", flush=True)
    for name, entry in peers.items():
        print(f"    {name:<44} {entry['seconds']:7.3f} s (best {entry['best']:.3f}, "
              f"cpu {entry['cpu_seconds']:.3f})", flush=True)


# -- report ----------------------------------------------------------------------------------


def _table(peers: dict[str, dict[str, Any]], same: dict[str, bool] | None) -> list[str]:
    ours_name = next(iter(peers))
    ours = peers[ours_name]["seconds"]
    lines = ["| command | median s | best s | worst s | cpu s | same answer | "
             f"`{ours_name}` takes |", "|---|---:|---:|---:|---:|:---:|---:|"]
    for name, entry in peers.items():
        answer = "-" if same is None or name not in same else ("yes" if same[name] else "NO")
        lines.append(f"| {name} | {entry['seconds']:.3f} | {entry['best']:.3f} | "
                     f"{entry['worst']:.3f} | {entry['cpu_seconds']:.3f} | {answer} | "
                     f"{ours / entry['seconds']:.2f}x its time |")
    return lines


def write_report(report: dict[str, Any], out: Path = RESULTS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "cli.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Command line benchmark: whole processes", "",
        f"Machine: {report['machine']}; Python {report['python']}; run {report['when']}.",
        f"Command: `python -m benchmarks.bench_cli{' --quick' if report['quick'] else ''}"
        f"{' --big' if report['big'] else ''}`; {report['rounds']} rounds, every command once a "
        "round in the order listed. Seconds are wall seconds of the whole process, start-up "
        "included; cpu is user + system of the process. The package's bytecode is compiled "
        "beforehand, as installing it compiles it.", "",
        "## Start-up", "",
        *_table(report["startup"]["peers"], report["startup"]["same_answer"]), "",
        "Over a bare `python -c pass`: " + ", ".join(
            f"{name} +{entry['over_bare_python']:.3f} s"
            for name, entry in report["startup"]["peers"].items()
            if name != "python -c pass") + ".", "",
    ]
    for case in report["top_investors"]:
        lines += [f"## top-investors, {case['rows']:,} rows", "",
                  "Ours checks every row and sums exact Decimals; the peers check nothing "
                  "(DuckDB and polars read amounts as DECIMAL(18, 2)).", "",
                  *_table(case["peers"], case["same_top5"]), ""]
    case = report["monitor"]
    lines += [f"## monitor, {case['rows']:,} rows ({case['alerts']} alerts)", "",
              "Ours checks every row (the input pipeline's rules, vectorised), keeps event-time "
              "windows in a store with duplicate and lateness handling; the script assumes a "
              "clean file in time order.", "",
              *_table(case["peers"], case["same_alerts"]), ""]
    (out / "cli.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k rows")
    parser.add_argument("--big", action="store_true", help="also rank a 10M-row file")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="folder for cli.md and cli.json (default: benchmarks/results)")
    args = parser.parse_args(argv)
    rows = 100_000 if args.quick else 1_000_000
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick, "big": args.big, "rounds": args.rounds, "top_investors": [],
    }
    compile_package()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report["startup"] = startup_case(folder, args.rounds * 2)
        for size in [rows, 10_000_000] if args.big else [rows]:
            path = folder / f"brief_{size}.csv"
            start = time.perf_counter()
            write_brief(path, size)
            print(f"wrote {size:,} rows in {time.perf_counter() - start:.1f} s", flush=True)
            report["top_investors"].append(ranking_case(path, size, args.rounds))
            path.unlink()
        path = folder / "generated.csv"
        write_generated(path, rows)
        report["monitor"] = monitor_case(path, rows, args.rounds)
    write_report(report, args.out)
    print(f"wrote {args.out / 'cli.md'}")


if __name__ == "__main__":
    main()
