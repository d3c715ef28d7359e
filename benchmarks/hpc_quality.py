"""Clustering quality of kmerx read embeddings against species labels (docs/hpc_quality.md).

Reads are simulated from the genomes in ../shared/data/species (labels.tsv names each file's species),
the same number per species, split evenly over the species' strains; each read's name starts with its
species. Every read set is embedded with ``kmerx embed --local`` under several tokenizer configs, the
embeddings are clustered by the MPI solver (``mpirun -n RANKS python -m kmerx.hpc kmeans|spectral``) with
K = the number of species, and the clusters are scored against the species: purity and adjusted Rand
index (ARI), both computed here with numpy from the contingency table (and checked against scikit-learn's
ARI when it is importable). Each clustering is repeated for every ``--solver-seeds`` seed; a row gives the
mean purity and ARI and the ARI's range.

    python benchmarks/hpc_quality.py                                  # defaults: 2,000 reads/species, 2 ranks
    python benchmarks/hpc_quality.py --markdown                       # Markdown table + the command
    python benchmarks/hpc_quality.py --lengths 150 --configs k4-direct-mean --solvers kmeans

Read sets (``--lengths``), all with fixed seeds and cached in ``--work``:
    150   ART (art_illumina) HiSeq 2500 profile (HS25), 150 bp single-end, with sequencing errors
    250   ART MiSeq v3 profile (MSv3), 250 bp single-end, with sequencing errors
    1000  error-free 1,000 bp fragments cut by a seeded numpy sampler (not ART: its profiles stop at 250 bp)
Every read comes from either strand with probability 1/2 (ART does the same).

ART needs ``art_illumina`` on PATH (Debian/Ubuntu: ``apt-get install art-nextgen-simulation-tools``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("KMERX_SHARED_DATA", ROOT / ".." / "shared" / "data"))
SPECIES = SHARED / "species"

#: read length -> (simulator, ART profile or None, description)
READ_SETS: dict[int, tuple[str, str | None, str]] = {
    150: ("art", "HS25", "ART HiSeq 2500 (HS25), SE"),
    250: ("art", "MSv3", "ART MiSeq v3 (MSv3), SE"),
    1000: ("exact", None, "error-free fragments"),
}

#: name -> (tokenizer, k, pool, --set overrides of the pipeline defaults)
CONFIGS: dict[str, tuple[str, int, str, dict[str, Any]]] = {
    "k31-hashed-mean": ("hashed 2^20 (default)", 31, "mean", {}),
    "k4-direct-mean": ("direct", 4, "mean", {"tokenizer.scheme": "direct", "tokenizer.k": 4}),
    "k4-direct-sum": ("direct", 4, "sum", {"tokenizer.scheme": "direct", "tokenizer.k": 4, "embed.pool": "sum"}),
    "k5-direct-mean": ("direct", 5, "mean", {"tokenizer.scheme": "direct", "tokenizer.k": 5}),
    "k6-direct-mean": ("direct", 6, "mean", {"tokenizer.scheme": "direct", "tokenizer.k": 6}),
    "k21-lsh-mean": ("lsh m=20", 21, "mean", {"tokenizer.scheme": "lsh", "tokenizer.k": 21}),
}
DEFAULT_CONFIGS = ["k31-hashed-mean", "k4-direct-mean", "k6-direct-mean"]
ART_INSTALL = ("art_illumina (ART) is not on PATH; install it, e.g. `sudo apt-get install "
               "art-nextgen-simulation-tools` (Debian/Ubuntu) or `conda install -c bioconda art`, "
               "or pass --lengths 1000 for the error-free fragments only")


# ---- labels and genomes ---------------------------------------------------------------------------
def load_labels(data: pathlib.Path) -> dict[str, list[dict[str, str]]]:
    """species -> its rows of labels.tsv (file, strain, ...), in file order."""
    path = data / "labels.tsv"
    if not path.exists():
        sys.exit(f"error: {path} not found (set KMERX_SHARED_DATA or --data)")
    by_species: dict[str, list[dict[str, str]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            by_species.setdefault(row["species"], []).append(row)
    return by_species


def read_fasta(path: pathlib.Path) -> list[tuple[str, bytes]]:
    """(id, uppercase sequence) of every record of a (gzipped) FASTA file."""
    opener = gzip.open if path.suffix == ".gz" else open
    records: list[tuple[str, bytes]] = []
    name, parts = None, []
    with opener(path, "rb") as f:
        for line in f:
            if line.startswith(b">"):
                if name is not None:
                    records.append((name, b"".join(parts).upper()))
                name, parts = line[1:].split()[0].decode(), []
            else:
                parts.append(line.strip())
    if name is not None:
        records.append((name, b"".join(parts).upper()))
    return records


def plain_fasta(data: pathlib.Path, file: str, work: pathlib.Path) -> pathlib.Path:
    """The genome decompressed under work/genomes (ART reads plain FASTA only); cached."""
    out = work / "genomes" / file.removesuffix(".gz")
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with gzip.open(data / file, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        tmp.rename(out)
    return out


# ---- simulation -----------------------------------------------------------------------------------
def read_fastq(path: pathlib.Path) -> list[tuple[bytes, bytes]]:
    """(sequence, quality) of every record of a 4-line FASTQ file."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    return [(lines[i + 1], lines[i + 3]) for i in range(0, len(lines) - 3, 4)]


def art_reads(fasta: pathlib.Path, profile: str, length: int, n: int, genome_bp: int, seed: int,
              rng: np.random.Generator, tmp: pathlib.Path) -> list[tuple[bytes, bytes]]:
    """n reads of ART (single-end, fixed seed) from one genome: ART at a coverage giving ~1.5 n reads
    over all its records (chromosomes and plasmids alike), then n of them drawn without replacement."""
    fold = 1.5 * n * length / genome_bp
    for _ in range(4):
        prefix = tmp / f"{fasta.stem}-{length}"
        cmd = ["art_illumina", "-ss", profile, "-i", str(fasta), "-l", str(length), "-f", f"{fold:.6f}",
               "-rs", str(seed), "-na", "-q", "-o", str(prefix)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"error: {shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        reads = read_fastq(prefix.with_suffix(".fq"))
        if len(reads) >= n:
            pick = np.sort(rng.choice(len(reads), size=n, replace=False))
            return [reads[i] for i in pick]
        fold *= 2
    sys.exit(f"error: ART gave {len(reads)} reads of {fasta}, fewer than {n}")


_COMPLEMENT = bytes.maketrans(b"ACGTN", b"TGCAN")


def exact_reads(records: list[tuple[str, bytes]], length: int, n: int,
                rng: np.random.Generator) -> list[tuple[bytes, bytes]]:
    """n error-free fragments: a record drawn in proportion to its start positions, a uniform start, the
    reverse complement with probability 1/2; quality 'I' (Q40) throughout."""
    seqs = [s for _, s in records if len(s) >= length]
    starts = np.array([len(s) - length + 1 for s in seqs], dtype=np.float64)
    which = rng.choice(len(seqs), size=n, p=starts / starts.sum())
    pos = (rng.random(n) * starts[which]).astype(np.int64)
    flip = rng.random(n) < 0.5
    qual = b"I" * length
    out = []
    for w, p, f in zip(which, pos, flip, strict=True):
        s = seqs[w][p:p + length]
        out.append((s.translate(_COMPLEMENT)[::-1] if f else s, qual))
    return out


def simulate(data: pathlib.Path, work: pathlib.Path, length: int, per_species: int, seed: int) -> pathlib.Path:
    """The read set of ``length`` (see READ_SETS) as work/reads/*.fq, cached: ``per_species`` reads per
    species, split evenly over its strains, shuffled (seeded); read names ``Genus_species|strain|i``."""
    kind, profile, _ = READ_SETS[length]
    out = work / "reads" / f"{'art-' + profile if profile else kind}-{length}bp-{per_species}-seed{seed}.fq"
    if out.exists():
        return out
    if kind == "art" and shutil.which("art_illumina") is None:
        sys.exit(f"error: {ART_INSTALL}")
    rng = np.random.default_rng([seed, length])
    names: list[str] = []
    reads: list[tuple[bytes, bytes]] = []
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        for s_idx, (species, strains) in enumerate(sorted(load_labels(data).items())):
            share = [per_species // len(strains) + (i < per_species % len(strains)) for i in range(len(strains))]
            for t_idx, (row, n) in enumerate(zip(strains, share, strict=True)):
                if kind == "art":
                    fasta = plain_fasta(data, row["file"], work)
                    got = art_reads(fasta, profile, length, n, int(row["total_bp"]), seed + 100 * s_idx + t_idx,
                                    rng, pathlib.Path(tmp))
                else:
                    got = exact_reads(read_fasta(data / row["file"]), length, n, rng)
                tag = species.replace(" ", "_")
                names += [f"{tag}|{row['strain']}|{i}" for i in range(n)]
                reads += got
    order = rng.permutation(len(reads))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    with open(tmp_out, "wb") as f:
        for i in order:
            seq, qual = reads[i]
            f.write(b"@%s\n%s\n+\n%s\n" % (names[i].encode(), seq, qual))
    tmp_out.rename(out)
    return out


# ---- pipeline and solver --------------------------------------------------------------------------
def env() -> dict[str, str]:
    """This checkout's src/ first on PYTHONPATH when its native module is built there (an in-place build);
    otherwise the installed kmerx."""
    e = dict(os.environ)
    if any((ROOT / "src" / "kmerx").glob("_core*")):
        e["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), e.get("PYTHONPATH")) if p)
    return e


def run(cmd: list[str]) -> float:
    """Run cmd (stopping the benchmark with its output on failure); its wall seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: {shlex.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return time.perf_counter() - t0


def embed_cmd(reads: pathlib.Path, out: pathlib.Path, config: str) -> list[str]:
    sets = [f"{key}={json.dumps(value)}" for key, value in CONFIGS[config][3].items()]
    return [sys.executable, "-m", "kmerx", "embed", str(reads), "-o", str(out), "--local",
            *[a for s in sets for a in ("--set", s)]]


def solver_cmd(solver: str, emb: pathlib.Path, result: pathlib.Path, k: int, ranks: int, seed: int) -> list[str]:
    args = {"kmeans": ["--k", str(k)], "spectral": ["--clusters", str(k), "--neighbors", "15"]}[solver]
    from kmerx.hpc.handoff import mpirun

    return [mpirun(), "-n", str(ranks), sys.executable, "-m", "kmerx.hpc", solver, "--input", str(emb),
            "--output", str(result), *args, "--seed", str(seed)]


def read_column(directory: pathlib.Path, kind: str, columns: list[str]) -> dict[str, np.ndarray]:
    """The named columns of every shard listed in directory/manifest.json, concatenated."""
    import pyarrow.parquet as pq

    manifest = json.loads((directory / "manifest.json").read_text())
    if manifest.get("kind") != kind:
        sys.exit(f"error: {directory}/manifest.json has kind {manifest.get('kind')!r}, expected {kind!r}")
    tables = [pq.read_table(directory / s["path"], columns=columns) for s in manifest["shards"]]
    return {c: np.concatenate([t.column(c).to_numpy(zero_copy_only=False) for t in tables]) for c in columns}


def species_labels(emb: pathlib.Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(read_index, species code, species names) of every embedded read, from its name."""
    cols = read_column(emb, "kmerx-embeddings", ["read_index", "name"])
    species = np.array([n.split("|", 1)[0] for n in cols["name"]])
    names, codes = np.unique(species, return_inverse=True)
    return cols["read_index"].astype(np.int64), codes, [str(n) for n in names]


def clusters(result: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    cols = read_column(result, "kmerx-hpc-result", ["read_index", "cluster"])
    return cols["read_index"].astype(np.int64), cols["cluster"].astype(np.int64)


# ---- metrics --------------------------------------------------------------------------------------
def contingency(labels: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """counts[cluster, class]."""
    _, c = np.unique(pred, return_inverse=True)
    _, s = np.unique(labels, return_inverse=True)
    table = np.zeros((c.max() + 1, s.max() + 1), dtype=np.int64)
    np.add.at(table, (c, s), 1)
    return table


def purity(labels: np.ndarray, pred: np.ndarray) -> float:
    """Fraction of reads in their cluster's majority species."""
    return float(contingency(labels, pred).max(axis=1).sum() / len(labels))


def adjusted_rand_index(labels: np.ndarray, pred: np.ndarray) -> float:
    """Hubert and Arabie's ARI from pair counts: (index - expected) / (max - expected)."""
    table = contingency(labels, pred).astype(np.float64)
    n = table.sum()

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    index, a, b = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = a * b / (n * (n - 1) / 2)
    top = (a + b) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


def cross_check(labels: np.ndarray, pred: np.ndarray) -> bool:
    """Compare the ARI with scikit-learn's when it is importable (it is not required): True if compared."""
    try:
        from sklearn.metrics import adjusted_rand_score
    except ImportError:
        return False
    ref, ours = adjusted_rand_score(labels, pred), adjusted_rand_index(labels, pred)
    if not np.isclose(ref, ours, atol=1e-9):
        sys.exit(f"error: ARI {ours} differs from sklearn's {ref}")
    return True


# ---- driver ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=pathlib.Path, default=ROOT / "build" / "hpc_quality",
                   help="work directory: genomes, simulated reads (cached), embeddings, results")
    p.add_argument("--data", type=pathlib.Path, default=SPECIES, help="genomes + labels.tsv")
    p.add_argument("--reads-per-species", type=int, default=2000)
    p.add_argument("--lengths", type=int, nargs="+", default=list(READ_SETS), choices=list(READ_SETS))
    p.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    p.add_argument("--solvers", nargs="+", default=["kmeans", "spectral"], choices=["kmeans", "spectral"])
    p.add_argument("--ranks", type=int, default=2, help="MPI ranks of the solver")
    p.add_argument("--seed", type=int, default=0, help="seed of the read simulation (ART -rs and numpy)")
    p.add_argument("--solver-seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="solver seeds (k-means++ seeding); a row gives the mean and the range over them")
    p.add_argument("--markdown", action="store_true", help="a Markdown table and the command to reproduce it")
    args = p.parse_args(argv)

    t_start = time.perf_counter()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    n_species = len(load_labels(args.data))
    rows: list[dict[str, Any]] = []
    checked = 0
    for length in args.lengths:
        reads = simulate(args.data, work, length, args.reads_per_species, args.seed)
        for config in args.configs:
            emb = work / "emb" / f"{reads.stem}-{config}"
            shutil.rmtree(emb, ignore_errors=True)
            t_embed = run(embed_cmd(reads, emb, config))
            index, codes, names = species_labels(emb)
            order = np.argsort(index)
            labels = codes[order]
            for solver in args.solvers:
                scores = []
                for seed in args.solver_seeds:
                    result = work / "result" / f"{emb.name}-{solver}-r{args.ranks}-s{seed}"
                    shutil.rmtree(result, ignore_errors=True)
                    t_solve = run(solver_cmd(solver, emb, result, len(names), args.ranks, seed))
                    r_index, pred = clusters(result)
                    r_order = np.argsort(r_index)
                    if not np.array_equal(index[order], r_index[r_order]):
                        sys.exit(f"error: {result} does not hold one cluster per embedded read")
                    pred = pred[r_order]
                    checked += cross_check(labels, pred)
                    scores.append((purity(labels, pred), adjusted_rand_index(labels, pred), t_solve))
                pur, ari, secs = np.array(scores).T
                tokenizer, k, pool, _ = CONFIGS[config]
                rows.append({"reads": f"{length} bp {READ_SETS[length][2]}", "tokenizer": tokenizer, "k": k,
                             "pool": pool, "n": len(labels), "species": len(names), "solver": solver,
                             "purity": float(pur.mean()), "ARI": float(ari.mean()),
                             "ARI range": f"{ari.min():.3f} to {ari.max():.3f}",
                             "embed s": t_embed, "cluster s": float(secs.mean())})
                print(_row_text(rows[-1]), file=sys.stderr, flush=True)
    total = time.perf_counter() - t_start

    header = ["reads", "tokenizer", "k", "pool", "n", "species", "solver", "purity", "ARI", "ARI range",
              "embed s", "cluster s"]
    cells = [[_cell(r[h], h.endswith(" s")) for h in header] for r in rows]
    seeds = " ".join(map(str, args.solver_seeds))
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" if h in ("reads", "tokenizer", "pool", "solver") else "--:" for h in header) + "|")
        for c in cells:
            print("| " + " | ".join(c) + " |")
        cmd = ["python", "benchmarks/hpc_quality.py", *(argv if argv is not None else sys.argv[1:])]
        print(f"\nReproduce: `{shlex.join(cmd)}` ({n_species} species in labels.tsv; solver on {args.ranks} "
              f"MPI ranks; simulation seed {args.seed}; purity and ARI: mean over solver seeds {seeds}; "
              f"embed s: one `kmerx embed --local` run; cluster s: one mpirun, mean over the seeds; "
              f"total {total:.0f} s)")
    else:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for c in cells:
            print("  ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)))
        print(f"purity and ARI: mean over solver seeds {seeds}; total {total:.0f} s")
    if checked:
        print(f"ARI of {checked} clusterings cross-checked against sklearn.metrics.adjusted_rand_score",
              file=sys.stderr)


def _cell(v: Any, seconds: bool = False) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if seconds else f"{v:.3f}"
    return f"{v:,}" if isinstance(v, int) and v >= 10000 else str(v)


def _row_text(r: dict[str, Any]) -> str:
    return (f"{r['reads']:<40} {r['tokenizer']:<22} k={r['k']:<2} {r['pool']:<4} {r['solver']:<8} "
            f"purity {r['purity']:.3f}  ARI {r['ARI']:.3f} ({r['ARI range']})  "
            f"({r['embed s']:.1f} + {r['cluster s']:.1f} s)")


if __name__ == "__main__":
    main()
