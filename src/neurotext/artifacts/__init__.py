"""Every file that crosses a stage boundary: its path under ``results/{run}/`` (`neurotext.artifacts.paths`), its
Arrow schema or array layout and its reader, one module per artifact family. docs/ARCHITECTURE.md, "Artifacts",
lists them all."""
