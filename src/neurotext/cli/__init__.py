"""The ``neurotext`` command: look at a finished (or half-finished) run from a terminal.

``neurotext runs`` lists the runs under ``results/``; ``neurotext show L6.200`` prints one neuron (its top sentences
with the max token marked, its patterns by kind, its metadata shares, its explanation scores when the scores stage
has run, and its one-line summary); ``neurotext search WORD`` lists the neurons whose patterns or top tokens contain
a word. ``--json`` prints the same content as one JSON document for scripts.

Everything is read through `neurotext.artifacts` (paths, schemas and readers of the files stages exchange; see
docs/ARCHITECTURE.md), imported only when a command runs, so ``neurotext --help`` starts without pyarrow.
Errors a user can fix (no such run, neuron or layer, a stage not run yet) print one line naming what is missing and
what to do, and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

from neurotext.cli.runs import DEFAULT_RESULTS, DEFAULT_RUN, UserError, cmd_runs
from neurotext.cli.search import cmd_search
from neurotext.cli.show import cmd_show
from neurotext.cli.text import Marker, clean_text, mark_sentence

__all__ = ["EXIT_USAGE", "Marker", "UserError", "build_parser", "clean_text", "main", "mark_sentence"]

EXIT_USAGE = 2

EPILOG_MAIN = """\
examples:
  neurotext runs                         runs under results/, their config hashes and what they hold
  neurotext show L6.200                  one neuron: top sentences, patterns, metadata, scores, summary
  neurotext show L6.200 -n 20 --json     the same as JSON, 20 top sentences
  neurotext search Olympics              neurons whose patterns or top tokens contain "Olympics"
  neurotext --results /data/results runs --json
"""


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=88)


def _count(text: str) -> int:
    """An argparse type: a non-negative integer."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (an integer >= 0)")
    return value


def _common(sub: argparse.ArgumentParser, run: bool = True) -> None:
    group = sub.add_argument_group("where")
    results_help = f"the results directory holding one folder per run (default: ./{DEFAULT_RESULTS})"
    group.add_argument("--results", default=None, metavar="DIR", help=results_help)
    if run:
        run_help = f"the run (a folder of --results; default: the only run, or '{DEFAULT_RUN}')"
        group.add_argument("--run", default=None, metavar="NAME", help=run_help)
    sub.add_argument("--json", action="store_true", help="print one JSON document instead of text (for scripts)")


def build_parser() -> argparse.ArgumentParser:
    """The `neurotext` argument parser with its three subcommands."""
    parser = argparse.ArgumentParser(
        prog="neurotext",
        description="Look at the neurons of a neurotext run: top sentences, patterns, metadata, scores.",
        epilog=EPILOG_MAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    results_help = f"the results directory (default: ./{DEFAULT_RESULTS}); also accepted after the command"
    parser.add_argument("--results", dest="results_main", default=None, metavar="DIR", help=results_help)
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    runs = subs.add_parser(
        "runs", help="list the runs, their config hashes and what they hold", formatter_class=raw,
        description=_wrap("List the runs under the results directory: each run's config hash (provenance.json's, "
        "else the one stamped in most of its parquet files), its layers, the stages present (per-layer stages list "
        "their layers when not all are there), and the stages whose files were made under another config (stale)."),
        epilog="examples:\n  neurotext runs\n  neurotext runs --results /data/results --json\n",
    )  # fmt: skip
    _common(runs, run=False)

    show = subs.add_parser(
        "show", help="one neuron: top sentences, patterns, metadata, scores, summary", formatter_class=raw,
        description=_wrap("Print one neuron of a run: its one-line summary, its top sentences (activation, dataset, "
        "the max-activating token marked), its kept patterns by kind, best first (z, top and background support, "
        "BH q), the metadata values of its top sentences against the corpus, and its explanation scores when the "
        "scores stage has run."),
        epilog="examples:\n  neurotext show L6.200\n  neurotext show L6.200 -n 20 --patterns 10\n"
        "  neurotext show L1.5 --run test --json | jq .summary\n",
    )  # fmt: skip
    show.add_argument("neuron", metavar="NEURON", help="L<layer>.<neuron>, e.g. L6.200 (layers from 1, neurons from 0)")
    show.add_argument("-n", type=_count, default=10, metavar="N", help="top sentences to show (default 10)")
    show.add_argument("--patterns", type=_count, default=5, metavar="N", help="patterns per kind (default 5)")
    show.add_argument("--metadata", type=_count, default=3, metavar="N", help="metadata values per field (default 3)")
    show.add_argument("--width", type=_count, default=160, metavar="CHARS",
                      help="clip sentences to about this many characters around the max token (0 = never; "
                      "default 160)")  # fmt: skip
    _common(show)

    search = subs.add_parser(
        "search", help="neurons whose patterns or top tokens contain a word", formatter_class=raw,
        description=_wrap("Find neurons whose kept patterns (words, skip-n-grams, POS n-grams, subtrees) contain WORD "
        "as whole words, or whose top sentences peak on WORD (their max-activating token, or the word holding it; "
        "any case). Neurons are ranked by how many of their first --top top sentences peak on WORD, then by their "
        "best matching pattern's z."),
        epilog="examples:\n  neurotext search Olympics\n  neurotext search \"going to\" --layer 6 -n 5\n"
        "  neurotext search VBD --json\n",
    )  # fmt: skip
    search.add_argument("word", metavar="WORD", help="a word or phrase (matched as whole words, any case)")
    search.add_argument("-n", type=_count, default=20, metavar="N", help="neurons to list (default 20)")
    search.add_argument("--top", type=_count, default=20, metavar="N",
                        help="top sentences per neuron whose max token is compared (default 20)")  # fmt: skip
    search.add_argument("--layer", type=int, action="append", metavar="L",
                        help="search only this layer (repeat for several)")  # fmt: skip
    _common(search)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the `neurotext` console script; returns the exit status (0 ok, 2 a usage problem or something
    missing from the run, 1 an artifact that cannot be read)."""
    out = out or sys.stdout
    with contextlib.redirect_stdout(out):  # --help goes where the output goes
        args = build_parser().parse_args(argv)
    commands = {"runs": cmd_runs, "show": cmd_show, "search": cmd_search}
    try:
        return commands[args.command](args, out)
    except UserError as error:
        print(f"neurotext {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError) as error:  # the artifacts readers name the file and the rule to rerun
        if isinstance(error, BrokenPipeError):  # `neurotext show ... | head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        print(f"neurotext {args.command}: cannot read the run: {error}".replace("\n", " "), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
