"""Activation sites of a transformer's blocks, found by module type (or structure) rather than by name guesses.

A *site* is where the scan reads a [batch, tokens, width] activation in each block (layer L = block L - 1):

* `hidden`: the block's output, i.e. the residual stream after block L (HF ``hidden_states[L]``; for decoders'
  last block this is *before* the final norm, as SAELens' ``hook_resid_post``, while HF applies the final norm to
  ``hidden_states[-1]``).
* `ffn`: the MLP's activation, i.e. the input of the MLP's down projection (BERT: the ``intermediate`` output;
  GPT-2: ``act(c_fc(x))``; NeoX: ``act(dense_h_to_4h(x))``; Llama: ``act(gate_proj(x)) * up_proj(x)``).
* `attn`: the attention block's output before the residual add (BERT: ``attention.output.dense`` before dropout and
  LayerNorm; GPT-2 / NeoX / Llama: the attention module's output, after its output projection).

Families: each `Family` names its block classes (checked with ``isinstance`` on transformers' own classes) and the
attribute paths of its attention output module and MLP down projection. A block of an unknown class that has the
same structure as a family (e.g. Mistral / Qwen2 blocks look like Llama's) is accepted as that family.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from neurotext.config import ConfigError

SITES = ("hidden", "ffn", "attn")


@dataclass(frozen=True)
class Family:
    """A model family: `classes` ('module:Class' of transformers block classes), `attn` (path of the module whose
    output, or first output, is the attention output before the residual add), `down` (path of the MLP's down
    projection, whose input is the ffn site)."""

    name: str
    classes: tuple[str, ...]
    attn: str
    down: str


_BERT = "transformers.models"
FAMILIES = (
    Family(
        "bert",
        tuple(
            f"{_BERT}.{m}.modeling_{m}:{c}Layer"
            for m, c in (("bert", "Bert"), ("roberta", "Roberta"), ("electra", "Electra"),
                         ("xlm_roberta", "XLMRoberta"), ("camembert", "Camembert"))
        ),  # fmt: skip
        attn="attention.output.dense",
        down="output.dense",
    ),
    Family("distilbert", (f"{_BERT}.distilbert.modeling_distilbert:TransformerBlock",), "attention", "ffn.lin2"),
    Family("gpt2", (f"{_BERT}.gpt2.modeling_gpt2:GPT2Block",), "attn", "mlp.c_proj"),
    Family("gpt_neox", (f"{_BERT}.gpt_neox.modeling_gpt_neox:GPTNeoXLayer",), "attention", "mlp.dense_4h_to_h"),
    Family(
        "llama",
        tuple(
            f"{_BERT}.{m}.modeling_{m}:{c}DecoderLayer"
            for m, c in (("llama", "Llama"), ("mistral", "Mistral"), ("qwen2", "Qwen2"))
        ),
        attn="self_attn",
        down="mlp.down_proj",
    ),
)
SUPPORTED = ", ".join(f.name for f in FAMILIES)


def get_path(module: torch.nn.Module, path: str) -> torch.nn.Module | None:
    """The submodule at dotted `path`, or None."""
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module if isinstance(module, torch.nn.Module) else None


def _load_class(spec: str) -> type | None:
    module_name, _, class_name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), class_name, None)
    except ImportError:
        return None


def block_family(block: torch.nn.Module) -> Family | None:
    """The family of a block: by isinstance on the family's classes, else by structure (both paths present)."""
    for family in FAMILIES:
        classes = tuple(c for c in (_load_class(s) for s in family.classes) if c is not None)
        if classes and isinstance(block, classes):
            return family
    for family in FAMILIES:
        if get_path(block, family.attn) is not None and get_path(block, family.down) is not None:
            return family
    return None


def find_blocks(model: torch.nn.Module, n_layers: int | None) -> torch.nn.ModuleList | None:
    """The model's block list: the first ModuleList of `n_layers` (when known) same-class modules of a known
    family."""
    for module in model.modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0:
            continue
        if n_layers is not None and len(module) != n_layers:
            continue
        if len({type(block) for block in module}) == 1 and block_family(module[0]) is not None:
            return module
    return None


@dataclass
class Site:
    """One layer's site: `module` to hook, `pre` (read the module's input instead of its output), `width`."""

    module: torch.nn.Module
    pre: bool
    width: int

    def register(self, fn: Callable[[torch.Tensor], None]) -> torch.utils.hooks.RemovableHandle:
        """Call `fn(activations [B, T, width])` each time the site is computed (a forward or forward-pre hook)."""
        if self.pre:
            return self.module.register_forward_pre_hook(lambda _m, inputs: fn(inputs[0]))

        def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
            fn(output[0] if isinstance(output, tuple) else output)

        return self.module.register_forward_hook(hook)


def _in_features(module: torch.nn.Module) -> int:
    if isinstance(module, torch.nn.Linear):
        return int(module.in_features)
    weight = getattr(module, "weight", None)  # transformers' Conv1D (GPT-2): weight [in, out]
    if weight is not None and weight.ndim == 2:
        return int(weight.shape[0])
    raise ConfigError(f"model.site = 'ffn': cannot read the input width of {type(module).__name__}")


def find_sites(model: torch.nn.Module, site: str, key: str = "model.path") -> list[Site]:
    """One `Site` per block of `model` for `site` ('hidden', 'ffn', 'attn'); errors list the supported families."""
    if site not in SITES:
        raise ConfigError(f"model.site = {site!r}: choose one of {', '.join(SITES)}")
    config = getattr(model, "config", None)
    n_layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None)
    blocks = find_blocks(model, n_layers) or find_blocks(model, None)
    model_type = getattr(config, "model_type", "?")
    if blocks is None:
        raise ConfigError(
            f"{key}: the model (model_type {model_type!r}, {type(model).__name__}) has no block list of a family "
            f"neurotext knows; supported families: {SUPPORTED} (and models with the same block structure)"
        )
    family = block_family(blocks[0])
    assert family is not None
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0) or getattr(config, "dim", 0))
    sites = []
    for block in blocks:
        if site == "hidden":
            sites.append(Site(block, False, hidden))
        elif site == "attn":
            sites.append(Site(get_path(block, family.attn), False, hidden))
        else:
            down = get_path(block, family.down)
            sites.append(Site(down, True, _in_features(down)))
    return sites
