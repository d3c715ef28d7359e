"""Collision probability of the LSH and hashed token schemes against Hamming distance, on real k-mers.

    python benchmarks/lsh_collision.py                 # writes docs/lsh_collision.png, prints the tables
    python benchmarks/lsh_collision.py --kmers 200000  # a lower floor (1/n), slower

K-mers (k = 21 and 31) are sampled with a seed from E. coli K-12 MG1655 (windows holding a non-ACGT byte
are skipped); :func:`kmerx.tokenizers.lsh.collision_curve` pairs each with a copy carrying d random
substitutions and reports the fraction of pairs that share an id (docs/tokenizers.md, "Collision
probability"). Two expectations are drawn beside the measurements:

- bit sampling, forward strand: exactly C(k - d, s) / C(k, s), the chance that none of the d
  substituted positions is among the s sampled ones (every substitution changes the sampled code);
- random projection, forward strand: SimHash's E[(1 - theta / pi)^m] over the pairs, theta the angle
  between the k-mers as vectors of R^2k. A substitution to the complement base contributes -1 to their
  inner product and one to the two other bases 0, so with j ~ Binomial(d, 1/3) complement substitutions
  cos(theta) = (k - d - j) / k. It is an average over hyperplane draws; one seeded draw scatters around it.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time

import numpy as np

import kmerx
from kmerx.tokenizers import lsh

ROOT = pathlib.Path(__file__).resolve().parents[1]
GENOME = ROOT / ".." / "shared" / "data" / "species" / "Ecoli_MG1655-K12.fa.gz"


def record_letters(batches: list) -> list[np.ndarray]:
    """Each record's sequence as uint8 letters."""
    seqs = [s for b in batches for s in b.column("seq").to_pylist()]
    return [np.frombuffer(s if isinstance(s, bytes) else s.encode(), dtype=np.uint8) for s in seqs]


def sample_kmers(records: list[np.ndarray], k: int, n: int, seed: int) -> np.ndarray:
    """n distinct window starts (seeded) over all records, ACGT-only windows kept: uint8 (<= n, k)."""
    starts = np.concatenate([np.stack([np.full(len(r) - k + 1, i), np.arange(len(r) - k + 1)], 1)
                             for i, r in enumerate(records) if len(r) >= k])
    pick = np.random.default_rng(seed).choice(len(starts), size=min(n, len(starts)), replace=False)
    rows = [records[i][p : p + k] for i, p in starts[np.sort(pick)]]
    kmers = np.stack(rows)
    acgt = np.zeros(256, dtype=bool)
    acgt[np.frombuffer(b"ACGT", dtype=np.uint8)] = True
    return kmers[acgt[kmers].all(axis=1)]


def bits_theory(k: int, s: int, d: int) -> float:
    return math.comb(k - d, s) / math.comb(k, s)


def simhash_theory(k: int, m: int, d: int) -> float:
    total = 0.0
    for j in range(d + 1):
        weight = math.comb(d, j) * (1 / 3) ** j * (2 / 3) ** (d - j)
        theta = math.acos(max(-1.0, min(1.0, (k - d - j) / k)))
        total += weight * (1 - theta / math.pi) ** m
    return total


def schemes(k: int, seed: int) -> list[tuple[str, dict, str]]:
    """(label, config, plot style) of each measured tokenizer."""
    out = []
    for m in (8, 16, 24):
        for strand in ("forward", "canonical"):
            out.append((f"projection m={m} {strand}",
                        dict(scheme="lsh", lsh="projection", k=k, m=m, strand=strand, seed=seed), "proj"))
    out.append(("projection m=16 svd forward",
                dict(scheme="lsh", lsh="projection", k=k, m=16, strand="forward", hyperplanes="svd", seed=seed),
                "svd"))
    for s in (8, 12):
        out.append((f"bits s={s} forward", dict(scheme="lsh", lsh="bits", k=k, sampled=s, strand="forward", seed=seed),
                    "bits"))
    out.append(("bits s=12 canonical", dict(scheme="lsh", lsh="bits", k=k, sampled=12, strand="canonical", seed=seed),
                "bits"))
    out.append(("hashed B=2^20 canonical", dict(scheme="hashed", k=k, buckets=1 << 20, strand="canonical"), "hashed"))
    return out


def distances_for(k: int) -> list[int]:
    tail = {21: [15, 18, 21], 31: [16, 20, 25, 31]}.get(k, [k])
    return list(range(13)) + [d for d in tail if d > 12]


def fmt(p: float) -> str:
    if p == 0:
        return "0"
    if p >= 0.01:
        return f"{p:.3f}"
    return f"{p:.1e}"


def markdown(k: int, n: int, dists: list[int], rows: list[tuple[str, np.ndarray]]) -> str:
    head = f"| k={k}, {n} k-mers | " + " | ".join(f"d={d}" for d in dists) + " |"
    lines = [head, "|---" * (len(dists) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(fmt(p) for p in values) + " |" for label, values in rows]
    return "\n".join(lines)


def plot(results: dict, n_by_k: dict, out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"proj": {8: "#9ecae1", 16: "#3182bd", 24: "#08306b"}, "svd": "#2ca25f",
              "bits": {8: "#fdae6b", 12: "#e6550d"}, "hashed": "#636363"}
    fig, axes = plt.subplots(1, len(results), figsize=(6.5 * len(results), 5.4), sharey=True, squeeze=False)
    for ax, (k, (dists, rows)) in zip(axes[0], results.items(), strict=True):
        d = np.array(dists)
        for (label, cfg, style), values in rows:
            # Log axis: a measured zero (below 1/n) breaks the line instead of being drawn.
            y = np.where(values > 0, values, np.nan)
            if style == "proj":
                color = colors["proj"][cfg["m"]]
            elif style == "bits":
                color = colors["bits"][cfg["sampled"]]
            else:
                color = colors[style]
            ls = "none" if style == "hashed" else "--" if cfg.get("strand") == "canonical" else "-"
            ax.plot(d, y, marker="o", ms=3, lw=1.4, color=color, ls=ls, label=label)
            if style == "bits" and cfg["strand"] == "forward":
                dd = np.arange(0, k - cfg["sampled"] + 1)
                ax.plot(dd, [bits_theory(k, cfg["sampled"], x) for x in dd], color="k", lw=0.8, ls=":")
            if style == "proj" and cfg["strand"] == "forward":
                dd = np.arange(0, k + 1)
                ax.plot(dd, [simhash_theory(k, cfg["m"], x) for x in dd], color=color, lw=0.8, ls=":")
        ax.axhline(1 / n_by_k[k], color="0.6", lw=0.8, ls="-.")
        ax.text(d[-1], 1.15 / n_by_k[k], f"1/n (n = {n_by_k[k]}): zeros fall below", ha="right", va="bottom",
                fontsize=7, color="0.4")
        ax.set_yscale("log")
        ax.set_ylim(0.3 / n_by_k[k], 1.5)
        ax.set_xlabel("Hamming distance d (substitutions)")
        ax.set_title(f"k = {k}, E. coli MG1655 k-mers")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("P(same id)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="k", lw=0.8, ls=":"))
    labels.append("expected (forward): C(k-d,s)/C(k,s) for bits, SimHash for projection")
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7.5, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kmers", type=int, default=50_000, help="k-mers sampled per k (default 50000)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the sample, substitutions and hyperplanes")
    ap.add_argument("--ks", type=int, nargs="+", default=[21, 31])
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "docs" / "lsh_collision.png")
    ap.add_argument("--genome", type=pathlib.Path, default=GENOME)
    args = ap.parse_args(argv)
    if not args.genome.exists():
        print(f"{args.genome} is missing (../shared/data is not beside the project)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    batches = list(kmerx.read(args.genome))
    records = record_letters(batches)
    results, n_by_k = {}, {}
    for k in args.ks:
        kmers = sample_kmers(records, k, args.kmers, args.seed)
        n_by_k[k] = len(kmers)
        dists = distances_for(k)
        rows = []
        for label, cfg, style in schemes(k, args.seed):
            tok = kmerx.Tokenizer.from_config(cfg)
            if cfg.get("hyperplanes") == "svd":
                tok.fit(batches)  # fit_samples k-mers of the whole genome, seeded
            values = lsh.collision_curve(tok, kmers, dists, seed=args.seed)
            rows.append(((label, cfg, style), values))
        results[k] = (dists, rows)
        table_rows = [(label, values) for (label, _, _), values in rows]
        exact = [(f"exact bits s={s} forward", np.array([bits_theory(k, s, d) for d in dists])) for s in (8, 12)]
        sim = [(f"SimHash expectation m={m}", np.array([simhash_theory(k, m, d) for d in dists]))
               for m in (8, 16, 24)]
        print(markdown(k, len(kmers), dists, table_rows + exact + sim))
        print()
    plot(results, n_by_k, args.out)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
