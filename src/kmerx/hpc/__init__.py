"""HPC consumers of the embedding shards: mpi4py solver drivers and a Slurm bridge.

``mpirun -n N python -m kmerx.hpc <solver> --input OUT --output RESULT`` runs ``kmeans``, ``pca``,
``knn-graph`` or ``spectral`` on the rows of a pipeline output; every rank reads only its own rows
(:mod:`kmerx.hpc.parts`) and ranks combine with collectives. :mod:`kmerx.hpc.slurm` submits such
a run to Slurm and tracks it. Nothing here is imported by ``import kmerx``; mpi4py is imported only
when a solver runs.
"""
