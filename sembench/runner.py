"""The SemBench runner: run a scenario's queries under configurations, score, report.

Uses only SemQL's public API. Each configuration and repetition gets a fresh connection
(same model file), so figures of one run never leak into another; inside a run the
optimised configuration keeps a result cache, so a prompt asked by two queries is paid
once (reported as cache hits).

    python -m semql.sembench movie --config naive,optimized --rows 200
    semql bench movie --config optimized
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import semql
from semql.proxy_curve import save_curve

from . import scenario as scenarios

CONFIGS = {
    "naive": {"optimize": False, "cache": False},
    "optimized": {"cache": True},
    # optimised, and a proxy model may answer classifications at 0.95 agreement with the LM
    "proxy": {"cache": True, "accuracy_target": 0.95},
}
REWRITES = semql.REWRITES


@dataclass
class QueryResult:
    scenario: str
    config: str
    query: str
    repeat: int
    status: str
    quality: float | None
    metrics: dict
    seconds: float
    lm_calls: int
    prompt_tokens: int
    cached_prompt_tokens: int
    generated_tokens: int
    cache_hits: int
    rows_out: int | None
    options: dict = field(default_factory=dict)
    proxy: list = field(default_factory=list)  # proxy decisions: summary and curve


class _Progress:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.label = ""
        self.started = time.perf_counter()

    def start(self, label: str) -> None:
        self.label = label
        self.started = time.perf_counter()

    def __call__(self, op, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        if self.enabled:
            eta = elapsed / max(done, 1) * (total - done)
            sys.stderr.write(
                f"\r  {self.label}: {done}/{total} rows, {op.lm_calls} LM calls, "
                f"{op.cache_hits} cached, ETA {eta:4.0f}s   "
            )
            sys.stderr.flush()

    def finish(self, line: str) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 90 + "\r")
        print(line, file=sys.stderr, flush=True)


def run(
    name: str,
    configs: list[str],
    queries: list[str] | None = None,
    rows: int | None = None,
    model: str | None = None,
    repeat: int = 1,
    timeout: float | None = None,
    overrides: dict | None = None,
    progress: bool | None = None,
    sql_dir: Path | None = None,
) -> list[QueryResult]:
    """Run scenario ``name`` (its queries' SQL from ``sql_dir`` when given); one
    QueryResult per (config, repeat, query)."""
    scen = scenarios.load(name, sql_dir)
    chosen = [q for q in scen.queries if not queries or q.name in queries]
    unknown = set(queries or []) - {q.name for q in scen.queries}
    if unknown:
        raise ValueError(f"unknown queries for {name}: {', '.join(sorted(unknown))}")
    truth = scen.truth_connection(rows)
    show = sys.stderr.isatty() if progress is None else progress
    results: list[QueryResult] = []
    for config in configs:
        if config not in CONFIGS:
            raise ValueError(f"unknown config {config!r}; expected one of {', '.join(CONFIGS)}")
        options = {**CONFIGS[config], **(overrides or {})}
        for rep in range(repeat):
            bar = _Progress(show)
            with semql.connect(model=model, progress=bar, **options) as con:
                scen.register(con, rows)
                for q in chosen:
                    bar.start(f"{name} {q.name} [{config}]")
                    results.append(
                        _run_one(scen, q, con, truth, config, rep, options, bar, timeout)
                    )
    truth.close()
    return results


def _run_one(scen, q, con, truth, config, rep, options, bar, timeout) -> QueryResult:
    """One query; ``timeout`` is the query's max_seconds (LM calls and DuckDB alike)."""
    started = time.perf_counter()
    status, metrics, frame = "ok", {}, None
    try:
        frame = con.query(q.sql, **({"max_seconds": timeout} if timeout else {}))
    except semql.LimitExceeded as err:
        status = "timeout" if "max_seconds" in str(err) else f"error: {str(err).splitlines()[0]}"
    except semql.SemQLError as err:
        status = f"error: {str(err).splitlines()[0]}"
    seconds = time.perf_counter() - started
    if frame is not None:
        metrics = scen.score(q, frame, truth)
    s = con.stats
    result = QueryResult(
        scenario=scen.name,
        config=config,
        query=q.name,
        repeat=rep,
        status=status,
        quality=metrics.get("quality") if frame is not None else None,
        metrics=metrics,
        seconds=round(seconds, 3),
        lm_calls=s.lm_calls,
        prompt_tokens=s.prompt_tokens,
        cached_prompt_tokens=s.cached_prompt_tokens,
        generated_tokens=s.generated_tokens,
        cache_hits=s.cache_hits,
        rows_out=frame.height if frame is not None else None,
        options={k: v for k, v in options.items() if k != "progress"},
        proxy=[
            {"summary": p.summary(), "curve": p.curve, "params": p.curve_params, "rows": p.rows}
            for p in con.proxy_reports()
        ],
    )
    quality = "-" if result.quality is None else f"{result.quality:.3f}"
    bar.finish(
        f"  {q.name:4s} [{config}] {status:8s} quality {quality}  {seconds:7.1f}s  "
        f"{s.lm_calls} LM calls"
    )
    return result


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(results: list[QueryResult]) -> dict:
    """Per (config, query): mean over repeats of quality, seconds, LM calls, tokens."""
    table: dict = {}
    for r in results:
        table.setdefault(r.config, {}).setdefault(r.query, []).append(r)
    out: dict = {}
    for config, per_query in table.items():
        out[config] = {}
        for query, rs in per_query.items():
            ok = [r for r in rs if r.quality is not None]
            out[config][query] = {
                "status": rs[-1].status,
                "quality": _mean([r.quality for r in ok]),
                "seconds": _mean([r.seconds for r in rs]),
                "lm_calls": _mean([r.lm_calls for r in rs]),
                "prompt_tokens": _mean([r.prompt_tokens for r in rs]),
                "cached_prompt_tokens": _mean([r.cached_prompt_tokens for r in rs]),
            }
    return out


def markdown(summary: dict) -> str:
    configs = list(summary)
    queries = sorted({q for c in summary.values() for q in c}, key=lambda q: int(q[1:]))
    head = "| query | " + " | ".join(f"{c} quality | {c} s | {c} LM calls" for c in configs) + " |"
    lines = [head, "|---|" + "---|---|---|" * len(configs)]

    def fmt(v, digits):
        return "-" if v is None else f"{v:.{digits}f}"

    for q in queries:
        cells = []
        for c in configs:
            row = summary[c].get(q)
            if row is None:
                cells += ["", "", ""]
                continue
            quality = fmt(row["quality"], 3) if row["status"] == "ok" else row["status"][:20]
            cells += [quality, fmt(row["seconds"], 1), fmt(row["lm_calls"], 0)]
        lines.append(f"| {q} | " + " | ".join(cells) + " |")
    means = []
    for c in configs:
        qs = [r["quality"] for r in summary[c].values() if r["quality"] is not None]
        total = sum(r["seconds"] or 0 for r in summary[c].values())
        calls = sum(r["lm_calls"] or 0 for r in summary[c].values())
        means += [fmt(_mean(qs), 3), fmt(total, 1), fmt(calls, 0)]
    lines.append("| **mean quality / total** | " + " | ".join(means) + " |")
    return "\n".join(lines) + "\n"


def chart(summary: dict, path: Path) -> bool:
    """A bar chart of seconds and LM calls per query and configuration (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    configs = list(summary)
    queries = sorted({q for c in summary.values() for q in c}, key=lambda q: int(q[1:]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    width = 0.8 / max(len(configs), 1)
    for ax, key, title in zip(
        axes, ("quality", "seconds", "lm_calls"), ("quality", "seconds", "LM calls"), strict=True
    ):
        for i, c in enumerate(configs):
            values = [(summary[c].get(q) or {}).get(key) or 0 for q in queries]
            ax.bar([x + i * width for x in range(len(queries))], values, width, label=c)
        ax.set_xticks([x + width * (len(configs) - 1) / 2 for x in range(len(queries))])
        ax.set_xticklabels(queries)
        ax.set_title(title)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_reports(results: list[QueryResult], out: Path, meta: dict) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    doc = {"meta": meta, "summary": summary, "results": [asdict(r) for r in results]}
    (out / f"{meta['scenario']}-{stamp}.json").write_text(json.dumps(doc, indent=1, default=str))
    table = markdown(summary)
    (out / f"{meta['scenario']}-{stamp}.md").write_text(table)
    drawn = chart(summary, out / f"{meta['scenario']}-{stamp}.png")
    for r in results:  # the learning curve of every proxy model trained
        for i, proxy in enumerate(r.proxy):
            if proxy["curve"]:
                name = f"{meta['scenario']}-{stamp}-{r.config}-{r.query}-proxy{i}.png"
                save_curve(proxy["curve"], proxy["params"], out / name, rows=proxy["rows"])
    return {"summary": summary, "markdown": table, "chart": drawn, "stamp": stamp}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="semql bench", description="Run a SemBench scenario")
    p.add_argument("scenario", nargs="?", default="movie")
    p.add_argument(
        "--config",
        default="optimized",
        help="comma-separated: naive, optimized (default optimized)",
    )
    p.add_argument("--queries", help="comma-separated query names, e.g. Q1,Q3")
    p.add_argument("--rows", type=int, help="a deterministic sample of N rows per table")
    p.add_argument(
        "--sql-dir",
        type=Path,
        help="take each query's SQL from DIR/Qn.sql (your own wording), scored as the scenario's",
    )
    p.add_argument(
        "--model", help="GGUF path or server URL(s), comma-separated (default: the bundled model)"
    )
    p.add_argument(
        "--server",
        metavar="JSON",
        help='options for a server --model, e.g. \'{"chat": true, "flavor": "vllm"}\'',
    )
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--timeout", type=float, help="seconds per query before it is marked timeout")
    p.add_argument("--out", default="sembench-results")
    p.add_argument("--disable", default="", help=f"rewrites to turn off: {', '.join(REWRITES)}")
    p.add_argument("--no-cache", action="store_true", help="no result cache in any config")
    p.add_argument(
        "--calibration",
        choices=semql.CALIBRATIONS,
        help="how closed-set answers are decided (default: SemQL's, table)",
    )
    p.add_argument(
        "--precision-first",
        type=int,
        metavar="ROWS",
        help="LIMIT over an LM condition takes the rows the model is surest of among at most "
        "ROWS candidates, a fixed sample when there are more (default: SemQL's, 64; 0: the "
        "first rows that pass)",
    )
    p.add_argument(
        "--rank-by",
        choices=semql.RANK_BY,
        help="what orders precision-first LIMIT's rows (default: SemQL's, lm+embedding)",
    )
    return p


def options_from(args: argparse.Namespace) -> dict:
    """The connection options the command line sets in every config (``--disable``
    takes any of the rewrite switches, ``proxy`` included)."""
    overrides: dict = {}
    for name in filter(None, (s.strip() for s in args.disable.split(","))):
        if name not in REWRITES:
            raise ValueError(f"unknown rewrite {name!r}; expected {', '.join(REWRITES)}")
        overrides[name] = False
    if args.no_cache:
        overrides["cache"] = False
    if args.calibration:
        overrides["calibration"] = args.calibration
    if args.precision_first is not None:
        overrides["precision_first"] = args.precision_first
    if args.rank_by:
        overrides["rank_by"] = args.rank_by
    if args.server:
        try:
            server = json.loads(args.server)
        except json.JSONDecodeError as err:
            raise ValueError(f"--server is not JSON: {err}") from None
        if not isinstance(server, dict):
            raise ValueError("--server must be a JSON object of server options")
        overrides["server"] = server
    return overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides = options_from(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    configs = [c.strip() for c in args.config.split(",") if c.strip()]
    queries = [q.strip() for q in args.queries.split(",")] if args.queries else None
    try:
        results = run(
            args.scenario,
            configs,
            queries,
            args.rows,
            args.model,
            args.repeat,
            args.timeout,
            overrides,
            sql_dir=args.sql_dir,
        )
    except (ValueError, semql.SemQLError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    meta = {
        "scenario": args.scenario,
        "configs": configs,
        "rows": args.rows,
        "sql_dir": str(args.sql_dir) if args.sql_dir else None,
        "model": args.model or "bundled gemma3-270m-q4_k_m",
        "repeat": args.repeat,
        "calibration": args.calibration or semql.PlanOptions().calibration,
        "precision_first": overrides.get("precision_first", semql.PlanOptions().precision_first),
        "rank_by": overrides.get("rank_by", semql.PlanOptions().rank_by),
        "server": overrides.get("server"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "semql": semql.__version__,
    }
    report = write_reports(results, Path(args.out), meta)
    print(report["markdown"])
    print(
        f"reports in {args.out}/{args.scenario}-{report['stamp']}.*"
        + ("" if report["chart"] else " (no chart: pip install matplotlib)")
    )
    return 0
