"""A 2-D t-SNE map of one layer's neurons (scikit-learn, or openTSNE for many neurons): ``tsne.parquet``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from neurotext.artifacts.relations import TSNE_SCHEMA
from neurotext.config import ConfigError
from neurotext.relations.settings import TsneSettings

def tsne_map(vectors: np.ndarray, settings: TsneSettings, threads: int = 1) -> np.ndarray:
    """2-D t-SNE coordinates of the rows of `vectors`, float32 [n, 2] (PCA initialisation, seeded).

    Backend 'sklearn': Barnes-Hut, learning rate 'auto'. Backend 'opentsne' (FFT-accelerated, for many neurons;
    needs the openTSNE package): the same perplexity and seed, 250 early-exaggeration iterations and the rest
    of max_iter after them.
    """
    n = vectors.shape[0]
    if settings.perplexity >= n:
        raise ConfigError(
            f"relations.tsne.perplexity = {settings.perplexity:g}: t-SNE needs it below the number of neurons ({n})"
        )
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        if settings.backend == "opentsne":
            try:
                from openTSNE import TSNE as OpenTSNE
            except ImportError:
                raise ConfigError(
                    "relations.tsne.backend = 'opentsne' needs the openTSNE package (pip install openTSNE==1.0.4); "
                    "install it or set relations.tsne.backend: sklearn"
                ) from None
            embedding = OpenTSNE(
                n_components=2,
                perplexity=settings.perplexity,
                n_iter=settings.max_iter - 250,
                early_exaggeration_iter=250,
                initialization="pca",
                random_state=settings.seed,
                n_jobs=threads,
            ).fit(vectors)
            return np.asarray(embedding, dtype=np.float32)
        from sklearn.manifold import TSNE

        model = TSNE(
            n_components=2,
            perplexity=settings.perplexity,
            init="pca",
            learning_rate="auto",
            max_iter=settings.max_iter,
            random_state=settings.seed,
            n_jobs=threads,
        )
        return np.asarray(model.fit_transform(vectors), dtype=np.float32)


def tsne_table(coordinates: np.ndarray) -> pa.Table:
    """The t-SNE file's table (`TSNE_SCHEMA`), neurons in order."""
    return pa.table(
        {
            "neuron": np.arange(len(coordinates), dtype=np.int32),
            "x": coordinates[:, 0].astype(np.float32),
            "y": coordinates[:, 1].astype(np.float32),
        },
        schema=TSNE_SCHEMA,
    )
