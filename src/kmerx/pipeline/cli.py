"""``kmerx embed`` and ``kmerx inspect``: the pipeline's command line (registered by :mod:`kmerx.cli`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def add_commands(sub: Any) -> None:
    e = sub.add_parser(
        "embed", help="FASTA/FASTQ -> embedding shards (Parquet/HDF5) + manifest, on Ray",
        description="Clean, tokenize and embed every read of INPUTs into shards under OUT, manifest.json last. "
                    "Without --config: canonical k=31 k-mers hashed into 2^20 buckets, a seeded virtual 128-wide "
                    "table, one mean-pooled float32 vector per read. Re-running the same command resumes.")
    e.add_argument("inputs", nargs="+", metavar="INPUT", help="FASTA/FASTQ files (plain or compressed)")
    e.add_argument("-o", "--output", required=True, metavar="OUT", help="output directory")
    e.add_argument("--config", metavar="FILE", help="pipeline config (.toml or .json; sections read, clean, "
                                                     "tokenizer, table, embed, output)")
    e.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config option (JSON value), e.g. --set tokenizer.k=21; repeatable")
    e.add_argument("--format", choices=("parquet", "hdf5"), help="shard format (default parquet)")
    mode = e.add_mutually_exclusive_group()
    mode.add_argument("--per-token", action="store_true", help="one vector per token (no pooling)")
    mode.add_argument("--pool", choices=("mean", "sum", "max"), help="one vector per read (default mean)")
    e.add_argument("--paired", action="store_true", help="INPUTs are mate files in order: R1 R2 [R1 R2 ...]")
    e.add_argument("--address", metavar="ADDR", help="an existing Ray cluster ('auto', 'ray://host:10001'; "
                                                     "default: RAY_ADDRESS, else a local Ray for this run)")
    e.add_argument("--workers", type=int, metavar="N", help="embedding actors (default: one per two cores of a local Ray, one per two logical CPUs of a cluster)")
    e.add_argument("--gpus", type=int, default=0, metavar="N", help="GPU embedding actors (CUDA kernels)")
    e.add_argument("--local", action="store_true", help="run the stages in this process, without Ray")
    e.add_argument("--dry-run", action="store_true", help="print the plan (shards, reads, output size) and exit")
    e.add_argument("--then", metavar="SPEC", help="then run an MPI solver on OUT: 'slurm:kmeans --k 7' (a Slurm "
                                                   "job, waited for) or 'mpirun:pca --components 8' (here); docs/hpc.md")
    e.add_argument("--then-ranks", type=int, default=2, metavar="N", help="MPI ranks of the --then solver (default 2)")
    e.add_argument("--then-output", metavar="RESULT", help="the --then solver's result folder (default OUT.SOLVER)")
    e.add_argument("--then-slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the --then Slurm job (kmerx.hpc.slurm.SlurmJob): partition=debug, time=30, "
                        "mem=8G, nodes=2, ...; repeatable")
    e.set_defaults(func=cmd_embed)

    i = sub.add_parser("inspect", help="summarise an embedding output and check its shards' checksums",
                       description="Print the manifest's summary of OUT and re-hash every shard against it "
                                   "(exit 1 when a shard is missing or differs).")
    i.add_argument("output", metavar="OUT", help="output directory (or its manifest.json)")
    i.add_argument("--no-verify", action="store_true", help="do not re-hash the shards")
    i.add_argument("--json", action="store_true", help="print the manifest as JSON")
    i.set_defaults(func=cmd_inspect)


def _config(args: argparse.Namespace):
    from kmerx.pipeline import PipelineConfig

    data: dict[str, Any] = {}
    if args.config:
        data = PipelineConfig.load(args.config).to_dict()
    for item in args.set:
        key, sep, value = item.partition("=")
        section, dot, option = key.partition(".")
        if not sep or not dot:
            raise ValueError(f"--set takes SECTION.KEY=VALUE, got {item!r}")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value  # a bare string
        data.setdefault(section, {})[option] = parsed
    if args.format:
        data.setdefault("output", {})["format"] = args.format
    if args.per_token:
        data.setdefault("embed", {})["pool"] = "none"
    elif args.pool:
        data.setdefault("embed", {})["pool"] = args.pool
    return PipelineConfig.from_dict(data)


def _size(n: float) -> str:
    from kmerx.formats.manifest import _size

    return _size(n)


def _then(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The --then hand-off and its Slurm options, checked before any work."""
    from kmerx.hpc import handoff
    from kmerx.hpc.slurm import SlurmJob

    then = handoff.parse_then(args.then)
    if args.then_ranks < 1:
        raise ValueError(f"--then-ranks must be >= 1, got {args.then_ranks}")
    options: dict[str, Any] = {}
    for item in args.then_slurm:
        key, sep, value = item.partition("=")
        if not sep or key in ("command", "ntasks"):
            raise ValueError(f"--then-slurm takes KEY=VALUE (a SlurmJob option other than command/ntasks), got {item!r}")
        options[key] = int(value) if value.isdigit() else value
    if options and then.backend != "slurm":
        raise ValueError("--then-slurm applies to --then slurm:...")
    SlurmJob(["true"], **options)  # a bad option fails now, not after the embedding
    handoff.check(then)
    return then, options


def cmd_embed(args: argparse.Namespace) -> None:
    import contextlib

    from kmerx import pipeline

    cfg = _config(args)
    then, slurm = _then(args) if args.then else (None, {})
    if args.dry_run:
        p = pipeline.plan(args.inputs, cfg, paired=args.paired)
        in_bytes = sum(i["size"] for g in p["inputs"] for i in g)
        mode = "per token" if cfg.embed.per_token else f"pooled ({cfg.embed.pool})"
        print(f"plan for {args.output} (run {p['run_digest']})")
        print(f"  inputs      {sum(len(g) for g in p['inputs'])} files, {_size(in_bytes)}, {len(p['units'])} read tasks")
        print(f"  reads       {p['reads']:,} ({p['bases']:,} bases)")
        print(f"  embedding   {mode}, dim {p['dim']}, {cfg.embed.out_dtype}, vocabulary {p['vocab_size']:,}")
        print(f"  shards      {len(p['shards'])} x up to {p['reads_per_shard']:,} reads, "
              f"row groups of {p['row_group_rows']:,}, {cfg.output.format}")
        print(f"  output      about {_size(p['estimated_bytes'])}")
        return
    on_ray = then is not None and not args.local
    if on_ray:  # one Ray session for the pipeline and the hand-off task
        from kmerx.pipeline import ray_engine

        session = ray_engine.session(args.address)
    with session if on_ray else contextlib.nullcontext(None) as cores:
        workers = args.workers or (ray_engine.default_workers(cores) if on_ray else None)
        result = pipeline.run(args.inputs, args.output, cfg, paired=args.paired,
                              engine="local" if args.local else "ray", address=args.address, workers=workers,
                              gpus=args.gpus, progress=sys.stderr.isatty())
        if result.already_complete:
            print(f"{args.output}: already complete (same inputs and config); nothing to do", file=sys.stderr)
        print(result.summary())
        if then is not None:
            from kmerx.hpc import handoff

            run = handoff.run_then_on_ray if on_ray else handoff.run_then
            r = run(args.output, then, ranks=args.then_ranks, result=args.then_output, slurm=slurm)
            job = r["job"]
            via = f"Slurm job {job['id']}" if job["backend"] == "slurm" else "mpirun"
            print(f"then    {then.solver} on {r['ranks']} ranks via {via}: {job['state']}, "
                  f"{r['timings']['total_seconds']:.1f} s -> {os.path.join(r['path'], 'manifest.json')}")
            print(f"        {json.dumps(r['result'], sort_keys=True)}")


def cmd_inspect(args: argparse.Namespace) -> None:
    from kmerx.formats import manifest

    m = manifest.read(args.output)
    if args.json:
        json.dump(m, sys.stdout, indent=1, sort_keys=True)
        print()
    else:
        print(manifest.summary(m))
    if args.no_verify:
        return
    folder = args.output[: -len(manifest.NAME)] if args.output.endswith(manifest.NAME) else args.output
    problems = manifest.verify(folder or ".", m)
    if problems:
        raise ValueError(f"{len(problems)} shard(s) do not match the manifest: " + "; ".join(problems))
    print(f"  checksums: all {len(m['shards'])} shards match", file=sys.stdout if not args.json else sys.stderr)
