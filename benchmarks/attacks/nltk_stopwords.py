"""Write scikit-learn's English stop words as NLTK's ``corpora/stopwords/english`` under the given folder.

TextAttack imports NLTK's stop-word list at import time and NLTK cannot download it offline.
Usage: ``python benchmarks/attacks/nltk_stopwords.py .venv-textattack/nltk_data``
"""
from __future__ import annotations

import sys
from pathlib import Path

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS


def main(root: str) -> None:
    target = Path(root) / "corpora" / "stopwords"
    target.mkdir(parents=True, exist_ok=True)
    (target / "english").write_text("\n".join(sorted(ENGLISH_STOP_WORDS)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
