"""Labels-only tree strings (docs/ARCHITECTURE.md, "Pattern mining") and character-offset alignment of tokens.

Pure helpers over parser output, no I/O and no parser imports, so any stage may use them:

- `dependency_tree_string(tags, heads)`: ``(ROOT (VBD (PRP) (NN (DT))))``: one node per token, labelled by its PTB
  tag; a node's children are its dependents in word order; every sentence root hangs under the one ROOT, in order.
- `constituency_tree_string(trees)`: ``(ROOT (S (NP (PRP)) (VP (VBD) (NP (DT) (NN)))))`` from stanza-style trees
  (objects with `.label` and `.children`): words dropped, preterminal tags kept as leaves.
- `read_tree(text)` and `check_dependency_tree` / `check_constituency_tree`: an independent reader and the
  well-formedness checks the tests (and anyone suspicious of a parse file) apply.
- `align_spans`: which word (by character offsets) each model wordpiece falls in.

Labels never contain spaces or parentheses (`safe_label`), so a bracket string splits unambiguously on
``(``, ``)`` and whitespace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ROOT_LABEL = "ROOT"
_LABEL_REPLACEMENTS = {"(": "-LRB-", ")": "-RRB-"}


class TreeFormError(ValueError):
    """A tree string or head list is malformed; the message says where."""


def safe_label(label: str) -> str:
    """A label usable in a bracket string: '(' -> '-LRB-', ')' -> '-RRB-', whitespace -> '_', '' -> '_'."""
    if label in _LABEL_REPLACEMENTS:
        return _LABEL_REPLACEMENTS[label]
    cleaned = label.replace("(", "-LRB-").replace(")", "-RRB-")
    cleaned = "_".join(cleaned.split()) if any(ch.isspace() for ch in cleaned) else cleaned
    return cleaned or "_"


def _serialize(root: Any, label_of: Callable[[Any], str], children_of: Callable[[Any], Sequence[Any]]) -> str:
    """Bracket string of the tree under `root`, built iteratively (no recursion limit on deep trees)."""
    parts: list[str] = []
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            parts.append(")")
            continue
        if parts:
            parts.append(" ")
        parts.append("(")
        parts.append(label_of(node))
        stack.append((node, True))
        for child in reversed(children_of(node)):
            stack.append((child, False))
    return "".join(parts)


def dependency_children(heads: Sequence[int]) -> tuple[list[int], list[list[int]]]:
    """(roots, children) of a head list: `heads[i]` is token i's head index, -1 for a root.

    Roots and each token's children are in word order. Raises TreeFormError on an out-of-range head or a cycle
    (a cycle would leave tokens unreachable from ROOT).
    """
    n_tokens = len(heads)
    children: list[list[int]] = [[] for _ in range(n_tokens)]
    roots: list[int] = []
    for index, head in enumerate(heads):
        head = int(head)
        if head == -1:
            roots.append(index)
        elif 0 <= head < n_tokens and head != index:
            children[head].append(index)
        else:
            raise TreeFormError(f"token {index} has head {head}; a head is -1 (root) or another token's index")
    reached = 0
    stack = list(roots)
    while stack:
        node = stack.pop()
        reached += 1
        stack.extend(children[node])
    if reached != n_tokens:
        raise TreeFormError(f"heads {list(heads)} contain a cycle: {n_tokens - reached} tokens not under a root")
    return roots, children


def dependency_tree_string(tags: Sequence[str], heads: Sequence[int]) -> str:
    """Labels-only dependency tree: ``(ROOT (VBD (PRP) (NN (DT))))``.

    `tags[i]` labels token i (sanitised with `safe_label`); `heads[i]` is its head (-1 = a sentence root). Several
    roots (a text the parser split into sentences) all hang under the one ROOT, in word order.
    """
    if len(tags) != len(heads):
        raise TreeFormError(f"{len(tags)} tags but {len(heads)} heads")
    roots, children = dependency_children(heads)
    labels = [safe_label(tag) for tag in tags]
    root_node = -1
    return _serialize(
        root_node,
        lambda node: ROOT_LABEL if node == root_node else labels[node],
        lambda node: roots if node == root_node else children[node],
    )


def _is_word_leaf(node: Any) -> bool:
    return not node.children


def _is_preterminal(node: Any) -> bool:
    return len(node.children) == 1 and _is_word_leaf(node.children[0])


def preterminal_labels(tree: Any) -> list[str]:
    """Preterminal labels (the tags) of a stanza-style tree, left to right."""
    labels: list[str] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if _is_preterminal(node):
            labels.append(str(node.label))
        else:
            stack.extend(reversed([child for child in node.children if not _is_word_leaf(child)]))
    return labels


def constituency_tree_string(trees: Sequence[Any]) -> str:
    """Labels-only constituency tree of one or more stanza-style trees (`.label`, `.children`): words dropped.

    A preterminal becomes a leaf ``(TAG)``; a tree whose root is labelled ROOT contributes its children, any other
    root contributes itself; everything hangs under one ROOT. One stanza tree ``(ROOT (S ...))`` thus maps to
    ``(ROOT (S ...))`` without its words.
    """
    top: list[Any] = []
    for tree in trees:
        if str(tree.label) == ROOT_LABEL:
            top.extend(child for child in tree.children if not _is_word_leaf(child))
        else:
            top.append(tree)
    root_node = object()
    return _serialize(
        root_node,
        lambda node: ROOT_LABEL if node is root_node else safe_label(str(node.label)),
        lambda node: top
        if node is root_node
        else ([] if _is_preterminal(node) else [child for child in node.children if not _is_word_leaf(child)]),
    )


@dataclass
class TreeNode:
    """A node of a labels-only bracket tree as read by `read_tree`."""

    label: str
    children: list[TreeNode] = field(default_factory=list)

    def preorder(self) -> list[TreeNode]:
        """All nodes, parents before children, children left to right."""
        out: list[TreeNode] = []
        stack: list[TreeNode] = [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out

    def leaves(self) -> list[TreeNode]:
        """Nodes without children, left to right."""
        return [node for node in self.preorder() if not node.children]


def read_tree(text: str) -> TreeNode:
    """Read one labels-only bracket tree ``(LABEL child ...)``; raises TreeFormError naming the offset."""
    position = 0
    length = len(text)
    stack: list[TreeNode] = []
    root: TreeNode | None = None
    while position < length:
        char = text[position]
        if char.isspace():
            position += 1
        elif char == "(":
            if root is not None:
                raise TreeFormError(f"text after the tree closed at offset {position}: {text!r}")
            end = position + 1
            while end < length and not text[end].isspace() and text[end] not in "()":
                end += 1
            label = text[position + 1 : end]
            if not label:
                raise TreeFormError(f"node without a label at offset {position}: {text!r}")
            node = TreeNode(label)
            if stack:
                stack[-1].children.append(node)
            stack.append(node)
            position = end
        elif char == ")":
            if not stack:
                raise TreeFormError(f"unbalanced ')' at offset {position}: {text!r}")
            node = stack.pop()
            if not stack:
                root = node
            position += 1
        else:
            raise TreeFormError(f"bare word {char!r} at offset {position} (labels-only trees have none): {text!r}")
    if stack or root is None:
        raise TreeFormError(f"unbalanced '(' ({len(stack)} open) or empty tree: {text!r}")
    return root


def check_constituency_tree(text: str, tags: Sequence[str]) -> TreeNode:
    """Check a constituency tree string: well-formed, ROOT on top, leaves (preterminals) in order == `tags`."""
    root = read_tree(text)
    if root.label != ROOT_LABEL:
        raise TreeFormError(f"top label is {root.label!r}, expected {ROOT_LABEL}: {text!r}")
    leaves = [leaf.label for leaf in root.leaves()] if root.children else []
    if leaves != [safe_label(tag) for tag in tags]:
        raise TreeFormError(f"leaves {leaves} differ from tags {list(tags)}: {text!r}")
    return root


def check_dependency_tree(text: str, tags: Sequence[str], heads: Sequence[int]) -> TreeNode:
    """Check a dependency tree string against its token tags and heads.

    Well-formed; ROOT on top; exactly one node per token below it; and reading the tree in preorder while walking
    the head structure (roots then each token's dependents in word order) visits nodes whose labels are the tags
    of those tokens, so every node is tied to one token index.
    """
    root = read_tree(text)
    if root.label != ROOT_LABEL:
        raise TreeFormError(f"top label is {root.label!r}, expected {ROOT_LABEL}: {text!r}")
    nodes = root.preorder()[1:]
    if len(nodes) != len(tags):
        raise TreeFormError(f"{len(nodes)} token nodes for {len(tags)} tokens: {text!r}")
    roots, children = dependency_children(heads)
    pairs: list[tuple[TreeNode, int]] = list(zip(root.children, roots, strict=False))
    if len(root.children) != len(roots):
        raise TreeFormError(f"{len(root.children)} nodes under ROOT but {len(roots)} root tokens: {text!r}")
    while pairs:
        node, token = pairs.pop()
        if node.label != safe_label(tags[token]):
            raise TreeFormError(f"node {node.label!r} stands for token {token} tagged {tags[token]!r}: {text!r}")
        if len(node.children) != len(children[token]):
            raise TreeFormError(f"token {token} has {len(children[token])} dependents, its node {len(node.children)}")
        pairs.extend(zip(node.children, children[token], strict=True))
    return root


def align_spans(
    word_start: Sequence[int] | np.ndarray,
    word_end: Sequence[int] | np.ndarray,
    piece_start: Sequence[int] | np.ndarray,
    piece_end: Sequence[int] | np.ndarray,
) -> np.ndarray:
    """Index of the word each piece overlaps first (int32, shape [n_pieces]); -1 when it overlaps none.

    All four arguments are character offsets into the same text, end exclusive. Words must be sorted and
    non-overlapping (parser tokens are). Empty pieces (special tokens stored as (0, 0)) map to -1. Use it to relate
    a model's wordpieces (shard `char_start`/`char_end`) to a parse's tokens and tags.
    """
    w_start = np.asarray(word_start, dtype=np.int64)
    w_end = np.asarray(word_end, dtype=np.int64)
    p_start = np.asarray(piece_start, dtype=np.int64)
    p_end = np.asarray(piece_end, dtype=np.int64)
    out = np.full(p_start.shape, -1, dtype=np.int32)
    if w_start.size == 0 or p_start.size == 0:
        return out
    candidate = np.searchsorted(w_end, p_start, side="right")  # first word ending after the piece starts
    inside = candidate < w_start.size
    safe = np.minimum(candidate, w_start.size - 1)
    overlaps = inside & (w_start[safe] < p_end) & (p_end > p_start)
    out[overlaps] = candidate[overlaps]
    return out
