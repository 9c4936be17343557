"""Training sparse autoencoders on a model's token activations (`neurotext.sae.train`); loading and encoding SAEs
lives in `neurotext.features.sae`."""
