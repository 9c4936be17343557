"""Files of the neurons-against-latents comparison (rule neurons_vs_latents, workflow/rules/compare.smk; all under
``results/{run}/`` of the latents' run; the README's "Decoder models, sites, directions and SAEs"):

* ``tables/neurons_vs_latents.{md,csv}``: per layer and predictor (the scores' kinds, then the controls), the
  detection AUROC of the neuron run's units against this run's (medians, IQRs, the median difference, the
  probability that a latent's AUROC beats a neuron's, a Mann-Whitney p-value, the shares above the controls).
* ``figures/neurons_vs_latents.{png,pdf}``: per layer, the two AUROC distributions side by side for every predictor.

Both read the two runs' ``scores/layer{L}.parquet`` (`neurotext.artifacts.scores`).
"""

from __future__ import annotations

COMPARE_TABLE_PATHS = ("tables/neurons_vs_latents.md", "tables/neurons_vs_latents.csv")
COMPARE_FIGURE_PATHS = ("figures/neurons_vs_latents.png", "figures/neurons_vs_latents.pdf")

#: Columns of ``tables/neurons_vs_latents.csv``, in order.
COMPARE_COLUMNS: tuple[str, ...] = (
    "layer", "kind", "neurons", "latents", "neurons_left_out", "latents_left_out", "neurons_auroc_median", "neurons_auroc_q25", "neurons_auroc_q75",
    "latents_auroc_median", "latents_auroc_q25", "latents_auroc_q75", "median_difference", "p_latent_higher",
    "mannwhitney_p", "neurons_above_controls", "latents_above_controls",
)  # fmt: skip
