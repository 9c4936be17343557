"""Scores stage: how well each neuron's mined patterns predict its activations on text they were not mined from.

Modules: `settings` (the ``scores`` config block), `split` (explain/test split, the negatives), `predict` (pattern
weights summed over the patterns a sentence contains), `metrics` (AUROC, Pearson, Spearman, precision / recall /
F1, vectorised), `controls` (derangement, length, bag-of-words, length-matched negatives), `stage` (one layer's
job), `summary` (the table and the figure). Files: `neurotext.artifacts.scores`; method and metrics: the README's
"Explanation scores" section and docs/ARCHITECTURE.md.
"""

# Nothing is imported here: a job imports only the modules it needs (the negatives' rule runs in the light corpus
# env, without numba or scikit-learn).
