"""Does fluency put the plausible headlines of the blind reads first? LM log-prob per word with and without the
probability of each rare word in its slot, scored on the marks kept under `bench/reads/`.

For every sheet named: the AUC of each ranking (plausible above implausible, all sheets pooled) and how many
plausible headlines the 5 most fluent of each 20 lines of a sheet hold. A rare word's probability is the
bundled table's, at the LM state before its slot (`RareWords.distribution`); a word the table never saw gets its
least likely word's.

    .venv/bin/python bench/fluency_marks.py g h i j k m 2026-12-03-n   # a letter alone: 2026-12-02-<letter>
"""
import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from clickbait.bundle import load_bundle, default_bundle_path
from clickbait.generate import score_headlines
from clickbait.models import lm_contexts
from clickbait.rare import rare_slots
from clickbait.text import count_words

READS = Path(__file__).resolve().parent / "reads"


def fill_log_probs(texts: list[str], lm) -> np.ndarray:
    """Summed log-probability of each headline's words outside the vocabulary, by the LM's rare-word table."""
    tok, table, vocab = lm.tokenizer, lm.rare_words, set(lm.tokenizer.vocab)
    index = {w.lower(): i for i, w in enumerate(table.words)}
    token_lists = tok.tokenize(texts)
    slots = [rare_slots(tokens, vocab) for tokens in token_lists]
    rows = [i for i, s in enumerate(slots) if s]
    states = lm_contexts(lm.model, [tok.numericalize(token_lists[i]) for i in rows],
                         [slots[i] for i in rows], prime=[tok.o2i["xxeos"]])
    out = np.zeros(len(texts))
    for i, row_states in zip(rows, states):
        tokens = token_lists[i]
        for at, state in zip(slots[i], row_states):
            before = tokens[at - 1] if at else "xxbos"
            after = tokens[at + 1] if at + 1 < len(tokens) else "xxeos"
            probs = table.distribution(before, after, state.numpy())
            word = index.get(tokens[at])
            out[i] += np.log(probs[word] if word is not None else probs.min())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sheets", nargs="+", help="sheet folders under bench/reads (a letter alone: 2026-12-02-<letter>)")
    args = p.parse_args()
    lm = load_bundle(default_bundle_path("lm"))
    scores = {"LM only": [], "LM and rare words": []}
    marked, sheet_of = [], []
    for name in args.sheets:
        folder = READS / (f"2026-12-02-{name}" if len(name) == 1 else name)
        texts = [text for _, text in json.loads((folder / "key.json").read_text())]
        plausible = set(json.loads((folder / "marks.json").read_text())["plausible"])
        per_word = np.array([count_words(t) + 1 for t in texts])
        lm_only = np.array(score_headlines(texts, lm))
        scores["LM only"] += list(lm_only / per_word)
        scores["LM and rare words"] += list((lm_only + fill_log_probs(texts, lm)) / per_word)
        marked += [i in plausible for i in range(len(texts))]
        sheet_of += [name] * len(texts)
    marked, sheet_of = np.array(marked), np.array(sheet_of)
    print(f"{len(marked)} headlines, {marked.sum()} marked plausible")
    for name, values in scores.items():
        values, top, shown = np.array(values), 0, 0
        for sheet in args.sheets:
            rows = np.where(sheet_of == sheet)[0]
            for start in range(0, len(rows) - 19, 20):
                chunk = rows[start:start + 20]
                top += marked[chunk[np.argsort(-values[chunk], kind="stable")[:5]]].sum()
                shown += 5
        print(f"{name:<18} AUC {roc_auc_score(marked, values):.3f}   5 most fluent of each 20: {top} of {shown}")


if __name__ == "__main__":
    main()
