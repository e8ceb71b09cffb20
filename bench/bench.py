#!/usr/bin/env python3
"""Benchmark runner behind bench/run.sh (standard library only).

Runs each tool once over each whole folder of bench/data/ under `/usr/bin/time -v` (wall
clock, peak RSS, exit status), parses each tool's own report into per-file verdict counts,
then the single-file measurements (warm `cat` vs Airlock, pickle-engine MB/s, conversion vs
the Hub's method and `cp`), and writes a Markdown report to bench/out/results-<date>.md.

Selection by environment: TOOLS (default "airlock picklescan modelscan fickling modelaudit"),
SETS (default "small medium large all"; `all` is the three in one folder), EXTRAS (default "warm pickle500 convert formats"),
TIMEOUT (seconds per invocation, default 3600), SAMPLE (e.g. "modelaudit:10": that tool scans
every 10th file only, for tools too slow for the whole folder; reported as such, with an
extrapolated full-folder time). Tools missing on this machine are skipped
with a note, never silently.
"""

import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("BENCH_DATA", HERE / "data"))
OUT = Path(os.environ.get("BENCH_OUT", HERE / "out"))
PEERS_BIN = Path(os.environ.get("BENCH_PEERS_BIN", HERE / ".venv/peers/bin"))
DATA_PY = os.environ.get("BENCH_DATA_PY", str(HERE / ".venv/data/bin/python"))
TIMEOUT = int(os.environ.get("TIMEOUT", "3600"))
MB = 1024 * 1024

# Telemetry off for ModelAudit (its documented opt-outs); no network here anyway.
PEER_ENV = dict(os.environ, NO_ANALYTICS="1", PROMPTFOO_DISABLE_TELEMETRY="1", CI="1")


# ---------------------------------------------------------------- measuring


def measure(cmd, log_name, env=None):
    """Run cmd under /usr/bin/time -v; return wall seconds, peak RSS (MB), exit code."""
    OUT.mkdir(parents=True, exist_ok=True)
    time_file = OUT / f"{log_name}.time"
    log_file = OUT / f"{log_name}.log"
    full = ["/usr/bin/time", "-v", "-o", str(time_file), "timeout", str(TIMEOUT)] + [str(c) for c in cmd]
    with open(log_file, "wb") as log:
        log.write((" ".join(full) + "\n").encode())
        log.flush()
        start = time.monotonic()
        proc = subprocess.run(full, stdout=log, stderr=subprocess.STDOUT, env=env or os.environ)
        wall = time.monotonic() - start
    text = time_file.read_text(errors="replace") if time_file.exists() else ""
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    status = re.search(r"Exit status: (\d+)", text)
    user = re.search(r"User time \(seconds\): ([\d.]+)", text)
    system = re.search(r"System time \(seconds\): ([\d.]+)", text)
    code = int(status.group(1)) if status else proc.returncode
    return {
        "cmd": " ".join(str(c) for c in cmd),
        "wall": wall,
        "rss_mb": int(rss.group(1)) / 1024 if rss else None,
        # CPU seconds (user + system) are less distorted than wall time on a loaded machine.
        "cpu": float(user.group(1)) + float(system.group(1)) if user and system else None,
        "exit": code,
        "timed_out": code == 124,
        "log": log_file,
    }


def warm(path):
    """Read a file (or every file of a folder) twice so the page cache holds it."""
    files = [p for p in Path(path).rglob("*") if p.is_file()] if Path(path).is_dir() else [Path(path)]
    for _ in range(2):
        for f in files:
            with open(f, "rb") as fh:
                while fh.read(16 * MB):
                    pass


def files_in(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())


def folder_bytes(folder):
    return sum(p.stat().st_size for p in files_in(folder))


# ---------------------------------------------------------------- verdict parsers
# Each returns Counter with keys: dangerous, suspicious, clean, error, and "reported"
# (files the tool said it looked at), from the tool's own output.


def with_per_file(per_file, extra=None):
    """Counts of a {file name: verdict} map; the map is kept as .per_file."""
    counts = Counter(per_file.values())
    counts["reported"] = len(per_file)
    for key, value in (extra or {}).items():
        counts[key] = value  # notes, not tallies: set, never added
    counts.per_file = per_file
    return counts


def picklescan_flagged(log_text):
    return {Path(m.group(1)).name for m in re.finditer(r"^(.+?): dangerous import", log_text, re.M)}


def parse_picklescan(log_text, folder, strict_text=None):
    """Default mode flags only denylisted imports per file; unknown imports are only counted
    globally. With the --strict rerun's log, files flagged only there are "suspicious"."""
    flagged = picklescan_flagged(log_text)
    errors = {Path(m.group(1)).name for m in re.finditer(r"ERROR: parsing pickle in (.+?):", log_text)}
    strict = picklescan_flagged(strict_text) if strict_text else set()
    per_file = {}
    for f in files_in(folder):
        name = f.name
        if name in flagged:
            per_file[name] = "dangerous"
        elif name in errors:
            per_file[name] = "error"
        elif name in strict:
            per_file[name] = "suspicious"
        else:
            per_file[name] = "clean"
    sus = re.search(r"Suspicious globals: (\d+)", log_text)
    extra = {"suspicious globals (no per-file verdict)": int(sus.group(1)) if sus else 0}
    if strict_text:
        extra["of which suspicious only with --strict (untimed rerun)"] = len(strict - flagged - errors)
    return with_per_file(per_file, extra)


def parse_modelscan(report_path, folder):
    data = json.loads(Path(report_path).read_text())
    summary = data.get("summary", {})
    scanned = summary.get("scanned", {}).get("scanned_files", [])
    top = {s.split(":")[0] for s in scanned}
    worst = {}
    order = {"LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
    for issue in data.get("issues", []):
        src = str(issue.get("source", "")).split(":")[0]
        sev = order.get(str(issue.get("severity", "")).upper(), 1)
        worst[src] = max(worst.get(src, 0), sev)
    errored = {str(e.get("source", "")).split(":")[0] for e in data.get("errors", []) if isinstance(e, dict)}
    # Sources are relative to the scanned folder; errored files are not in scanned_files.
    per_file = {}
    for f in files_in(folder):
        name = str(f.relative_to(folder))
        if name in worst:
            per_file[name] = "dangerous" if worst[name] >= 3 else "suspicious"
        elif name in errored:
            per_file[name] = "error"
        elif name in top:
            per_file[name] = "clean"
        else:
            per_file[name] = "skipped"
    return with_per_file(per_file)


def parse_fickling(report_path, folder):
    per_file = {}
    for f in json.loads(Path(report_path).read_text())["files"]:
        sev = f["severity"]
        if sev in ("LIKELY_UNSAFE", "LIKELY_OVERTLY_MALICIOUS", "OVERTLY_MALICIOUS"):
            verdict = "dangerous"
        elif sev in ("SUSPICIOUS", "POSSIBLY_UNSAFE"):
            verdict = "suspicious"
        elif sev == "ERROR":
            verdict = "error"
        else:
            verdict = "clean"
        per_file[Path(f["path"]).name] = verdict
    return with_per_file(per_file)


def issue_file(location):
    loc = re.sub(r" \(.*$", "", str(location))
    return loc.split(":")[0]


def parse_modelaudit(report_path, folder):
    data = json.loads(Path(report_path).read_text())
    worst = {}
    order = {"debug": 0, "info": 0, "warning": 1, "critical": 2}
    for issue in data.get("issues", []):
        f = issue_file(issue.get("location", ""))
        worst[f] = max(worst.get(f, 0), order.get(str(issue.get("severity", "")).lower(), 1))
    worst = {Path(f).name: v for f, v in worst.items()}
    names = {0: "clean", 1: "suspicious", 2: "dangerous"}
    per_file = {f.name: names[worst.get(f.name, 0)] for f in files_in(folder)}
    codes = sorted({str(i.get("rule_code") or "unnamed") for i in data.get("issues", []) if i.get("severity") in ("warning", "critical")})
    return with_per_file(per_file, {"rule codes at warning/critical:": " ".join(codes)} if codes else {})


def parse_airlock(report_path, folder):
    """Tolerant of the JSON schema: every object with "path" and "verdict" is one file."""
    data = json.loads(Path(report_path).read_text())

    def walk(node):
        if isinstance(node, dict):
            if "verdict" in node and "path" in node and not node.get("member"):
                yield node
            for v in node.values():
                yield from walk(v)
        elif isinstance(node, list):
            for v in node:
                yield from walk(v)

    per_file = {}
    for entry in walk(data):
        verdict = str(entry["verdict"]).lower()
        per_file.setdefault(Path(entry["path"]).name, {"safe": "clean"}.get(verdict, verdict))
    return with_per_file(per_file)


# ---------------------------------------------------------------- tools


def tool_version(name):
    if name == "airlock":
        try:
            return subprocess.run([AIRLOCK, "--version"], capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    pkg = {"modelaudit": "modelaudit"}.get(name, name)
    try:
        out = subprocess.run([PEERS_BIN / "pip", "show", pkg], capture_output=True, text=True).stdout
        m = re.search(r"^Version: (.+)$", out, re.M)
        return m.group(1) if m else "?"
    except OSError:
        return "?"


def run_tool(name, folder, tag):
    report = OUT / f"{tag}-{name}.json"
    if report.exists():
        report.unlink()
    if name == "airlock":
        cmd = [AIRLOCK, "scan", folder, "--format", "json", "-o", report]
        res = measure(cmd, f"{tag}-{name}")
        res["verdicts"] = parse_airlock(report, folder) if report.exists() else Counter()
    elif name == "picklescan":
        cmd = [PEERS_BIN / "picklescan", "-p", folder]
        res = measure(cmd, f"{tag}-{name}", PEER_ENV)
        strict_text = None
        if os.environ.get("PICKLESCAN_STRICT", "1") == "1" and tag in ("small", "medium"):
            strict = measure([PEERS_BIN / "picklescan", "--strict", "-p", folder], f"{tag}-{name}-strict", PEER_ENV)
            strict_text = strict["log"].read_text(errors="replace")
        res["verdicts"] = parse_picklescan(res["log"].read_text(errors="replace"), folder, strict_text)
    elif name == "modelscan":
        cmd = [PEERS_BIN / "modelscan", "-p", folder, "-r", "json", "-o", report]
        res = measure(cmd, f"{tag}-{name}", PEER_ENV)
        res["verdicts"] = parse_modelscan(report, folder) if report.exists() else Counter()
    elif name == "fickling":
        cmd = [PEERS_BIN / "python", HERE / "fickling_dir.py", folder, report]
        res = measure(cmd, f"{tag}-{name}", PEER_ENV)
        res["verdicts"] = parse_fickling(report, folder) if report.exists() else Counter()
    elif name == "modelaudit":
        cmd = [PEERS_BIN / "modelaudit", "scan", folder, "--no-cache", "-f", "json", "-o", report]
        res = measure(cmd, f"{tag}-{name}", PEER_ENV)
        res["verdicts"] = parse_modelaudit(report, folder) if report.exists() else Counter()
    else:
        raise SystemExit(f"unknown tool {name}")
    return res


FOLDER_RUNS = int(os.environ.get("FOLDER_RUNS", "5"))
# Invocations shorter than this are repeated (QUICK_RUN_S=10 also repeats picklescan on `all`).
QUICK_RUN_S = float(os.environ.get("QUICK_RUN_S", "2"))


def run_tool_repeated(name, folder, tag):
    """run_tool once; an invocation under QUICK_RUN_S is repeated up to FOLDER_RUNS times in all
    and its median wall and CPU reported (a single run of tens of milliseconds is mostly noise).
    Applied to every tool alike; verdicts and peak RSS are the first run's (RSS: the largest)."""
    first = run_tool(name, folder, tag)
    if first["wall"] >= QUICK_RUN_S or FOLDER_RUNS <= 1:
        return first
    runs = [first] + [run_tool(name, folder, tag) for _ in range(FOLDER_RUNS - 1)]
    res = dict(first)
    res["wall"] = median([r["wall"] for r in runs])
    cpus = [r["cpu"] for r in runs if r.get("cpu") is not None]
    res["cpu"] = median(cpus) if cpus else None
    res["rss_mb"] = max((r["rss_mb"] or 0) for r in runs) or None
    res["runs"] = len(runs)
    return res


def sample_rates():
    """SAMPLE="modelaudit:10 fickling:5": that tool scans every Nth file of each folder
    (hard links in bench/out/sample-<set>-<N>/); its wall time is also extrapolated."""
    rates = {}
    for item in os.environ.get("SAMPLE", "").split():
        tool, _, every = item.partition(":")
        rates[tool] = max(1, int(every or "1"))
    return rates


def sample_folder(folder, set_name, every):
    target = OUT / f"sample-{set_name}-{every}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for i, f in enumerate(files_in(folder)):
        if i % every == 0:
            os.link(f, target / f.name)
    return target


ALL_SETS = ("small", "medium", "large")


def combined_folder():
    """The set `all`: small/, medium/ and large/ in one folder (hard links under bench/out/all),
    so that each tool makes one invocation over the whole corpus, as issue 2 measures it."""
    target = OUT / "all"
    if target.exists():
        shutil.rmtree(target)
    for set_name in ALL_SETS:
        (target / set_name).mkdir(parents=True)
        for f in files_in(DATA / set_name):
            os.link(f, target / set_name / f.name)
    return target


def tool_available(name):
    if name == "airlock":
        return AIRLOCK is not None and Path(AIRLOCK).exists()
    exe = "python" if name == "fickling" else name
    return (PEERS_BIN / exe).exists()


# ---------------------------------------------------------------- report


def fmt_counts(c):
    keys = ["dangerous", "suspicious", "unscannable", "error", "skipped", "clean"]
    main = ", ".join(f"{k} {c[k]}" for k in keys if c.get(k))
    extra = ", ".join(f"{k} {v}" for k, v in c.items() if k not in keys + ["reported"] and v)
    return "; ".join(x for x in (main or "nothing parsed", extra) if x)


def machine_lines():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    return [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- Machine: {os.cpu_count()} cores ({cpu}), {mem} RAM, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; load average at start: {LOAD_START}",
    ] + binary_lines()


def binary_lines():
    """Which airlock binary ran, and how it is linked (a static one starts ~0.5 ms sooner)."""
    if not AIRLOCK_OK:
        return []
    linked = "?"
    try:
        out = subprocess.run(["file", "-b", AIRLOCK], capture_output=True, text=True).stdout
        linked = "statically linked" if "static" in out else "dynamically linked" if "dynamic" in out else "?"
    except OSError:
        pass
    return [f"- Airlock binary: `{AIRLOCK}` ({linked})"]


def load_average():
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def mb(x):
    return "?" if x is None else f"{x:.0f}"


def file_kind(name):
    """small/ names are NNNN_<kind>.<ext>: the kind of artifact the file is."""
    m = re.match(r"^\d+_(.+)$", name)
    return m.group(1) if m else None


def kind_breakdown(results):
    """Per artifact kind, each tool's verdict counts (only where names carry a kind)."""
    per_tool = [(n, getattr(r["verdicts"], "per_file", None)) for n, r in results]
    per_tool = [(n, pf) for n, pf in per_tool if pf]
    kinds = sorted({file_kind(f) for _, pf in per_tool for f in pf} - {None})
    if not kinds:
        return []
    lines = ["", "Verdicts by kind of artifact (all benign):", ""]
    lines += [row(["kind"] + [n for n, _ in per_tool]), row(["---"] * (1 + len(per_tool)))]
    for kind in kinds:
        cells = []
        for _, pf in per_tool:
            c = Counter(v for f, v in pf.items() if file_kind(f) == kind)
            cells.append(", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "–")
        lines.append(row([kind] + cells))
    return lines


def scan_section(set_name, results, total_files, total_bytes):
    lines = [
        f"### {set_name}/ — {total_files} files, {total_bytes / MB:.0f} MB",
        "",
        row(["tool", "version", "wall (s)", "CPU (s)", "peak RSS (MB)", "exit", "files reported", "verdicts (files)"]),
        row(["---"] * 8),
    ]
    for name, res in results:
        note = " (timed out)" if res.get("timed_out") else ""
        if res.get("runs"):
            note += f" (median of {res['runs']})"
        if res.get("sample"):
            sampled, total = res["sample"]
            note += (
                f" on a 1-in-{total // max(1, sampled)} sample of {sampled} files"
                f" (≈ {res['extrapolated']:.0f} s wall, {res['extrapolated_cpu']:.0f} s CPU for all {total})"
            )
        lines.append(
            row(
                [
                    name,
                    VERSIONS.get(name, "?"),
                    f"{res['wall']:.2f}{note}",
                    "?" if res.get("cpu") is None else f"{res['cpu']:.2f}",
                    mb(res["rss_mb"]),
                    res["exit"],
                    res["verdicts"].get("reported", "?"),
                    fmt_counts(res["verdicts"]),
                ]
            )
        )
    lines += kind_breakdown(results)
    base = dict(results).get("airlock")
    if base and base["wall"] > 0:
        ratios = ", ".join(
            f"{n} {r.get('extrapolated', r['wall']) / base['wall']:.1f}×" + (" (extrapolated)" if r.get("sample") else "")
            for n, r in results
            if n != "airlock"
        )
        lines += ["", f"Airlock speed-up (peer wall / Airlock wall): {ratios}"]
    lines += ["", "Commands:", ""] + [f"- `{name}`: `{res['cmd']}`" for name, res in results] + [""]
    return lines


# ---------------------------------------------------------------- single-file measurements


WARM_RUNS = int(os.environ.get("WARM_RUNS", "21"))


def timed_direct(cmd):
    """Wall seconds of one run of cmd, started straight from Python (no shell, no `time` or
    `timeout` wrapper: those cost about 4 ms, more than the whole budget of a 5 % target on an
    80 ms `cat`), stdout to /dev/null."""
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, proc.returncode


def warm_cat_section():
    lines = ["### Warm-cache single checkpoint: `cat FILE > /dev/null` vs `airlock scan FILE`", ""]
    lines += [
        f"Each command ran {WARM_RUNS} times, alternating, page cache warm; wall time is the median. Both are",
        "started straight from Python with stdout to /dev/null (`cat FILE`, `airlock scan FILE`: the text report",
        "a user reads), without the `/usr/bin/time` + `timeout` wrapper of the other sections, whose start-up",
        "(measured below) is as large as the budget. Peak RSS comes from one more run of each under `/usr/bin/time`.",
        "",
    ]
    lines += [row(["file", "size (MB)", "cat (ms), median", "airlock (ms), median", "airlock / cat", "airlock runs (ms), min–max", "airlock RSS (MB)", "exit"])]
    lines += [row(["---"] * 8)]
    for f in files_in(DATA / "large"):
        warm(f)
        cats, als, codes = [], [], set()
        for _ in range(WARM_RUNS):
            cats.append(timed_direct(["cat", f])[0])
            if AIRLOCK_OK:
                wall, code = timed_direct([AIRLOCK, "scan", f])
                als.append(wall)
                codes.add(code)
        cat = statistics.median(cats)
        if als:
            al = statistics.median(als)
            rss = measure([AIRLOCK, "scan", f], f"warm-airlock-{f.stem}")["rss_mb"]
            cells = [f"{1000 * al:.2f}", f"{100 * al / cat:.1f} %", f"{1000 * min(als):.2f}–{1000 * max(als):.2f}",
                     mb(rss), ",".join(map(str, sorted(codes)))]
        else:
            cells = ["skipped (no airlock)", "", "", "", ""]
        lines.append(row([f.name, f"{f.stat().st_size / MB:.0f}", f"{1000 * cat:.1f}"] + cells))
    idle = statistics.median(timed_direct(["true"])[0] for _ in range(WARM_RUNS))
    wrapped = statistics.median(measure(["true"], f"warm-true-{i}")["wall"] for i in range(WARM_RUNS))
    lines += [
        "",
        f"Starting a process: `true` takes {1000 * idle:.2f} ms started this way, {1000 * wrapped:.1f} ms under the",
        f"`/usr/bin/time` + `timeout` wrapper (medians of {WARM_RUNS}). Both walls above include the first.",
    ]
    return lines + [""]


def pickle500_section():
    lines = ["### Pickle engine throughput (`airlock scan --threads 1`, warm cache)", ""]
    f = DATA / "pickle500" / "objects.pkl"
    if not f.exists():
        return lines + ["skipped: bench/data/pickle500/objects.pkl missing (run make_data.py)", ""]
    if not AIRLOCK_OK:
        return lines + ["skipped: no airlock binary given", ""]
    warm(f)
    res = measure([AIRLOCK, "scan", "--threads", "1", f, "--format", "json", "-o", OUT / "pickle500-airlock.json"], "pickle500-airlock")
    size = f.stat().st_size
    lines += [
        row(["file", "size (MB)", "wall (s)", "MB/s", "peak RSS (MB)", "exit"]),
        row(["---"] * 6),
        row([f.name, f"{size / MB:.0f}", f"{res['wall']:.3f}", f"{size / MB / res['wall']:.0f}", mb(res["rss_mb"]), res["exit"]]),
        "",
        f"Command: `{res['cmd']}`",
        "",
    ]
    return lines


def convert_inputs():
    folder = DATA / "convert"
    if folder.is_dir() and files_in(folder):
        return files_in(folder)
    large = files_in(DATA / "large")
    return large[:1]


def airlock_has_convert():
    if not AIRLOCK_OK:
        return False
    probe = subprocess.run([AIRLOCK, "convert", "--help"], capture_output=True, text=True)
    return probe.returncode == 0


CONVERT_RUNS = int(os.environ.get("CONVERT_RUNS", "3"))


def convert_methods(f, scratch, has_convert):
    """(label, command, durable) for each way of producing a file from checkpoint f.

    `durable` methods fsync their output before they finish, as `airlock convert` does by
    default; the others leave it in the page cache. Each is compared with its own kind."""
    methods = []
    if has_convert:
        out = scratch / "airlock.safetensors"
        methods.append(("airlock convert", [AIRLOCK, "convert", f, "-o", out], True))
        methods.append(("airlock convert --no-sync", [AIRLOCK, "convert", f, "-o", out, "--no-sync"], False))
    hf_out = scratch / "hf.safetensors"
    methods.append(("torch.load + save_file", [DATA_PY, HERE / "hf_convert.py", f, hf_out], False))
    methods.append(("torch.load + save_file + fsync", [DATA_PY, HERE / "hf_convert.py", f, hf_out, "--fsync"], True))
    copy = scratch / "copy.bin"
    methods.append(("cp", ["cp", f, copy], False))
    methods.append(("cp + fsync", ["sh", "-c", f'cp "{f}" "{copy}" && sync "{copy}"'], True))
    return methods


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def can_drop_caches():
    return os.access(DROP_CACHES, os.W_OK)


def drop_caches():
    """Empty the page cache (root only; a no-op elsewhere) so every conversion run pays the same
    reclaim cost whatever earlier sections left cached."""
    if can_drop_caches():
        DROP_CACHES.write_text("3\n")


def convert_section():
    lines = ["### Conversion to safetensors: `airlock convert` vs the Hub's method vs `cp`", ""]
    inputs = convert_inputs()
    if not inputs:
        return lines + ["skipped: no input checkpoints (run make_data.py, --convert for 1 GB + 5 GB)", ""]
    has_convert = airlock_has_convert()
    if not has_convert:
        lines += ["`airlock convert` skipped: the binary has no `convert` subcommand (yet).", ""]
    lines += [
        f"Each method ran {CONVERT_RUNS} times, round-robin (run 1 of every method, then run 2, ...); wall time is the",
        "median, RSS the largest. Before every run the",
        "outputs were deleted, the disk flushed (`sync`), " + ("the page cache dropped (`drop_caches`) " if can_drop_caches() else "")
        + "and the input read into the page cache,",
        "so every run starts from the same memory state (without the drop, the 20 GB of other bench data left",
        "in the cache made each run's reclaim cost vary by 2–3×: `cp` of the 5 GB input took 3.9–11.7 s). Methods",
        "marked durable fsync their output (as `airlock convert` does by default); the others leave it in",
        "the page cache, which is faster while memory lasts.",
        "",
    ]
    lines += [row(["input", "size (MB)", "method", "durable", "wall (s), median", "runs (s)", "peak RSS (MB)", "exit"]), row(["---"] * 8)]
    scratch = OUT / "convert-tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    commands = []
    ratios = []
    for f in inputs:
        size = f"{f.stat().st_size / MB:.0f}"
        walls = {}
        methods = convert_methods(f, scratch, has_convert)
        runs = {label: [] for label, _, _ in methods}
        # Round-robin: run i of every method before run i + 1 of any. Run back to back, a
        # method's three runs shared one stretch of the host's disk and memory state: at
        # 21:40 on 2026-12-04, `cp` of the 5 GB input took 1.8 s in the bench and 4.6-10.7 s
        # in alternation with `airlock convert` right after it, which took 2.9-6.7 s there and
        # 4.0-5.1 s in the bench.
        for i in range(CONVERT_RUNS):
            for label, cmd, _ in methods:
                for old in scratch.iterdir():
                    old.unlink()
                subprocess.run(["sync"], check=False)
                drop_caches()
                warm(f)
                runs[label].append(measure(cmd, f"convert-{f.stem}-{re.sub(r'[^a-z0-9]+', '_', label.lower())}-{i}"))
        for label, cmd, durable in methods:
            done = runs[label]
            wall = statistics.median(r["wall"] for r in done)
            rss = max((r["rss_mb"] or 0) for r in done)
            walls[label] = wall
            commands.append(f"- {label}: `{done[0]['cmd']}`")
            lines.append(row([f.name, size, label, "yes" if durable else "no", f"{wall:.2f}",
                              ", ".join(f"{r['wall']:.2f}" for r in done), mb(rss), done[-1]["exit"]]))
        for old in scratch.iterdir():
            old.unlink()
        if has_convert:
            ratios.append((f.name, walls))
    lines.append("")
    for name, w in ratios:
        lines.append(
            f"- {name}: durable: Hub's method + fsync / Airlock = {w['torch.load + save_file + fsync'] / w['airlock convert']:.1f}×, "
            f"Airlock / (cp + fsync) = {w['airlock convert'] / w['cp + fsync']:.2f}×; "
            f"page cache only: Hub's method / Airlock --no-sync = {w['torch.load + save_file'] / w['airlock convert --no-sync']:.1f}×, "
            f"Airlock --no-sync / cp = {w['airlock convert --no-sync'] / w['cp']:.2f}×; "
            f"Hub's method (no fsync) / Airlock (fsync) = {w['torch.load + save_file'] / w['airlock convert']:.1f}×"
        )
    return lines + ["", "Commands:", ""] + sorted(set(commands), key=commands.index) + [""]


# ---------------------------------------------------------------- formats/ (issue 4)

FORMATS_RUNS = int(os.environ.get("FORMATS_RUNS", "5"))
FORMATS_PEERS = ("modelaudit", "picklescan", "modelscan")


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def verdict_table(folder, results):
    """One row per file, one column per tool: each tool's own verdict for that file."""
    per_tool = [(n, getattr(r["verdicts"], "per_file", {}) or {}) for n, r in results]
    lines = [row(["file", "size (MB)"] + [n for n, _ in per_tool]), row(["---"] * (2 + len(per_tool)))]
    for f in files_in(folder):
        rel = str(f.relative_to(folder))
        cells = [pf.get(rel, pf.get(f.name, "not reported")) for _, pf in per_tool]
        lines.append(row([rel, f"{f.stat().st_size / MB:.1f}"] + cells))
    return lines


def check(ok):
    return "met" if ok else "**not met**"


# picklescan 1.0.5 (scanner.py) opens only these extensions (plus zip magic for its zip
# extensions); any other file is silently passed over, which its summary shows only as a count.
PICKLESCAN_EXTENSIONS = {".pkl", ".pickle", ".joblib", ".dat", ".data", ".bin", ".pt", ".pth", ".ckpt", ".npy", ".zip", ".npz", ".7z"}


def picklescan_coverage(res, folder):
    """picklescan's per-file verdicts, with the files it never opened marked skipped and the
    ones it could not parse marked error (its "could not parse ... as pickle" warnings)."""
    text = res["log"].read_text(errors="replace")
    unparsed = {Path(m.group(1)).name for m in re.finditer(r"could not parse (.+?) as pickle", text)}
    per_file = dict(getattr(res["verdicts"], "per_file", {}) or {})
    for f in files_in(folder):
        if f.suffix not in PICKLESCAN_EXTENSIONS:
            per_file[f.name] = "skipped"
        elif f.name in unparsed and per_file.get(f.name) == "clean":
            per_file[f.name] = "error"
    return with_per_file(per_file)


def peer_notes(results):
    """What each peer said about files it could not fully check, in its own words."""
    notes = []
    for name, res in results:
        report = OUT / f"formats-{name}.json"
        try:
            data = json.loads(report.read_text()) if report.exists() else {}
        except ValueError:
            data = {}
        if name == "modelaudit":
            for issue in data.get("issues", []):
                notes.append(f"- modelaudit, {issue.get('severity')}, `{Path(issue_file(issue.get('location', ''))).name}`: {issue.get('message')}")
        elif name == "modelscan":
            for err in data.get("errors", []):
                if isinstance(err, dict):
                    notes.append(f"- modelscan error, `{err.get('source')}`: {err.get('description')}")
        elif name == "picklescan":
            for line in res["log"].read_text(errors="replace").splitlines():
                if line.startswith(("WARNING", "ERROR", "Scanned files")):
                    notes.append(f"- picklescan: {line.strip()}")
    return ["", "What the peers reported (skips, missing dependencies, errors):", ""] + notes if notes else []


def formats_section(tools):
    """Issue 4: warm cache, `cat` of every file vs `airlock scan` of the folder (medians of
    FORMATS_RUNS runs each), ModelAudit once on the same folder, picklescan and modelscan once
    for the record; ratios against the targets and every tool's verdict per file."""
    folder = DATA / "formats"
    lines = ["### formats/ — safetensors, GGUF, ONNX + external data, Keras (issue 4)", ""]
    if not folder.is_dir() or not files_in(folder):
        return lines + ["skipped: bench/data/formats missing (run make_data.py --formats)", ""]
    files = files_in(folder)
    total = sum(f.stat().st_size for f in files)
    lines += [f"{len(files)} files, {total / MB:.0f} MB; page cache warmed (every file read twice) before each tool.", ""]
    warm(folder)
    cat_cmd = ["sh", "-c", 'cat "$@" > /dev/null', "cat"] + files
    cats = [measure(cat_cmd, f"formats-cat-{i}") for i in range(FORMATS_RUNS)]
    cat_wall = median([c["wall"] for c in cats])
    cat_cpu = median([c["cpu"] or 0 for c in cats])
    print(f"    cat: median {cat_wall:.3f}s wall over {FORMATS_RUNS} runs", flush=True)
    lines += [
        row(["command", "runs", "wall (s), median", "wall min–max", "CPU (s), median", "peak RSS (MB), max", "exit"]),
        row(["---"] * 7),
        row(["`cat` every file > /dev/null", FORMATS_RUNS, f"{cat_wall:.3f}", f"{min(c['wall'] for c in cats):.3f}–{max(c['wall'] for c in cats):.3f}", f"{cat_cpu:.3f}", mb(max(c["rss_mb"] or 0 for c in cats)), max(c["exit"] for c in cats)]),
    ]
    results = []
    al_wall = al_rss = None
    if AIRLOCK_OK and "airlock" in tools:
        warm(folder)
        runs = [run_tool("airlock", folder, "formats") for _ in range(FORMATS_RUNS)]
        al_wall = median([r["wall"] for r in runs])
        al_rss = max(r["rss_mb"] or 0 for r in runs)
        last = runs[-1]
        results.append(("airlock", last))
        print(f"    airlock: median {al_wall:.3f}s wall, max RSS {al_rss:.0f} MB: {fmt_counts(last['verdicts'])}", flush=True)
        lines.append(row([f"`airlock scan` ({VERSIONS.get('airlock', '?')})", FORMATS_RUNS, f"{al_wall:.3f}", f"{min(r['wall'] for r in runs):.3f}–{max(r['wall'] for r in runs):.3f}", f"{median([r['cpu'] or 0 for r in runs]):.3f}", mb(al_rss), max(r["exit"] for r in runs)]))
    else:
        lines.append(row(["`airlock scan`", 0, "skipped (no airlock binary)", "", "", "", ""]))
    for name in FORMATS_PEERS:
        if name not in tools:
            continue
        warm(folder)
        print(f"[{datetime.datetime.now():%H:%M:%S}] {name} on {folder} ...", flush=True)
        res = run_tool(name, folder, "formats")
        if name == "picklescan":
            res["verdicts"] = picklescan_coverage(res, folder)
        print(f"    {res['wall']:.2f}s wall, {res.get('cpu') or 0:.2f}s CPU, {mb(res['rss_mb'])} MB, exit {res['exit']}: {fmt_counts(res['verdicts'])}", flush=True)
        results.append((name, res))
        note = " (timed out)" if res.get("timed_out") else ""
        lines.append(row([f"`{name}` ({VERSIONS.get(name, '?')})", 1, f"{res['wall']:.2f}{note}", "", "?" if res.get("cpu") is None else f"{res['cpu']:.2f}", mb(res["rss_mb"]), res["exit"]]))
    lines += [""]
    if al_wall:
        lines += ["Against issue 4's targets:", ""]
        lines.append(f"- Airlock / `cat`: {100 * al_wall / cat_wall:.2f} % of `cat`'s wall time (target < 2 %): {check(al_wall < 0.02 * cat_wall)}")
        idle = median([measure(["true"], f"formats-true-{i}")["wall"] for i in range(FORMATS_RUNS)])
        lines.append(f"  (both walls include starting the process under `/usr/bin/time` and `timeout`: {1000 * idle:.1f} ms for `true`, median of {FORMATS_RUNS})")
        ma = dict(results).get("modelaudit")
        if ma:
            speed = ma["wall"] / al_wall
            timed = " (ModelAudit timed out: a lower bound)" if ma.get("timed_out") else ""
            al_cpu = median([r["cpu"] or 0 for r in runs])
            # /usr/bin/time counts CPU in 10 ms ticks: no ratio below that.
            cpu = f"; CPU seconds {ma['cpu'] / al_cpu:.0f}×" if ma.get("cpu") and al_cpu >= 0.01 else ""
            lines.append(f"- ModelAudit wall / Airlock wall: {speed:.0f}×{timed}{cpu} (target ≥ 20×): {check(speed >= 20)}")
        else:
            lines.append("- ModelAudit: not run (not in TOOLS or not installed)")
        lines.append(f"- Airlock peak RSS: {al_rss:.1f} MB, largest of {FORMATS_RUNS} runs (target < 64 MB): {check(al_rss < 64)}")
        lines.append("")
    lines += ["Verdicts per file (every file is benign; anything but clean is a false positive or a skip):", ""]
    lines += verdict_table(folder, results)
    lines += peer_notes(results)
    lines += ["", "Commands:", "", f"- cat: `cat {' '.join(str(f) for f in files)} > /dev/null`"]
    lines += [f"- {name}: `{res['cmd']}`" for name, res in results] + [""]
    return lines


# ---------------------------------------------------------------- main

AIRLOCK = None
AIRLOCK_OK = False
SAMPLES = {}
VERSIONS = {}
LOAD_START = "?"


def main():
    global AIRLOCK, AIRLOCK_OK, LOAD_START
    AIRLOCK = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
    if AIRLOCK:
        AIRLOCK = str(Path(AIRLOCK).resolve())
    AIRLOCK_OK = bool(AIRLOCK) and Path(AIRLOCK).exists()
    LOAD_START = load_average()
    SAMPLES.update(sample_rates())
    tools = os.environ.get("TOOLS", "airlock picklescan modelscan fickling modelaudit").split()
    sets = os.environ.get("SETS", "small medium large all").split()
    extras = os.environ.get("EXTRAS", "warm pickle500 convert formats").split()
    OUT.mkdir(parents=True, exist_ok=True)

    skipped = [t for t in tools if not tool_available(t)]
    tools = [t for t in tools if t not in skipped]
    for t in tools:
        VERSIONS[t] = tool_version(t)

    lines = ["# Airlock benchmark results", ""] + machine_lines() + [""]
    if skipped:
        lines += [f"Skipped tools (not installed / no binary given): {', '.join(skipped)}", ""]
    if sets and tools:
        lines += ["## Folder scans (one invocation per tool per folder, run one after another)", ""]
    else:
        sets = []
    for set_name in sets:
        folder = combined_folder() if set_name == "all" else DATA / set_name
        if not folder.is_dir():
            lines += [f"### {set_name}/ — missing, run bench/make_data.py", ""]
            continue
        files = files_in(folder)
        warm(folder)
        results = []
        for t in tools:
            every = SAMPLES.get(t, 1)
            target = sample_folder(folder, set_name, every) if every > 1 else folder
            print(f"[{datetime.datetime.now():%H:%M:%S}] {t} on {target} ...", flush=True)
            res = run_tool_repeated(t, target, set_name)
            if every > 1:
                sampled = len(files_in(target))
                res["sample"] = (sampled, len(files))
                res["extrapolated"] = res["wall"] * len(files) / max(1, sampled)
                res["extrapolated_cpu"] = (res.get("cpu") or 0) * len(files) / max(1, sampled)
            print(f"    {res['wall']:.2f}s wall, {res.get('cpu') or 0:.2f}s CPU, {mb(res['rss_mb'])} MB, exit {res['exit']}: {fmt_counts(res['verdicts'])}", flush=True)
            results.append((t, res))
        lines += scan_section(set_name, results, len(files), sum(p.stat().st_size for p in files))

    if "warm" in extras and (DATA / "large").is_dir():
        print("warm-cache cat vs airlock ...", flush=True)
        lines += warm_cat_section()
    if "pickle500" in extras:
        print("pickle500 throughput ...", flush=True)
        lines += pickle500_section()
    if "convert" in extras:
        print("conversion ...", flush=True)
        lines += convert_section()
    if "formats" in extras:
        print("formats/ (issue 4) ...", flush=True)
        lines += formats_section(tools)
    lines += [f"Load average at end: {load_average()} (2-core machine; other work running at the same time inflates every number)", ""]

    report = OUT / f"results-{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d-%H%M}.md"
    report.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"written: {report}")


if __name__ == "__main__":
    main()
