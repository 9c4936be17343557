"""Rebuild the vader fixtures from the real vaderSentiment 3.3.2 source archive (run from the repository root):

    python tests/data/vader/make_fixture.py [path/to/vaderSentiment-3.3.2.tar.gz]

Each fixture keeps the chosen lines of the real GroundTruth file byte for byte, in file order, CRLF line ends and no
line end after the last line (as in the real files). Chosen: the first 60 snippets and a few later ones with
non-ASCII text, HTML entities, and sentences that repeat within or across snippets (for the dedupe tests).
"""

from __future__ import annotations

import hashlib
import sys
import tarfile
from pathlib import Path

SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
CHOSEN_IDS = {
    # 217/296/377/382/560: &lt; &gt; entities; 918/1180, 1335/1337, 1426-1428: repeated sentences; 1241, 3517:
    # a pound sign and an n-tilde.
    "tweets_GroundTruth.txt": [
        *range(1, 61),
        217,
        296,
        377,
        382,
        560,
        918,
        1180,
        1241,
        1335,
        1337,
        1426,
        1427,
        1428,
        3517,
    ],
    # 93, 233, 264, 299, 344, 345: accents and dashes; 3462/5715, 6300/9841, 10374/10377: repeated sentences.
    "movieReviewSnippets_GroundTruth.txt": [
        *range(1, 61),
        93,
        233,
        264,
        299,
        344,
        345,
        3462,
        3580,
        5715,
        6300,
        9841,
        10374,
        10377,
    ],
}


def main(sdist: str) -> None:
    digest = hashlib.sha256(Path(sdist).read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{sdist}: sha256 {digest}, expected {SDIST_SHA256}")
    here = Path(__file__).parent
    with tarfile.open(sdist) as outer:
        inner_stream = outer.extractfile(INNER)
        assert inner_stream is not None
        with tarfile.open(fileobj=inner_stream) as inner:
            for member, ids in CHOSEN_IDS.items():
                data = inner.extractfile(f"hutto_ICWSM_2014/{member}").read()  # type: ignore[union-attr]
                wanted = {str(i).encode() for i in ids}
                lines = [line for line in data.split(b"\r\n") if line.split(b"\t", 1)[0] in wanted]
                assert len(lines) == len(ids), member
                (here / member).write_bytes(b"\r\n".join(lines))
                print(f"{here / member}: {len(lines)} lines")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "resources/sources/vader/vaderSentiment-3.3.2.tar.gz")
