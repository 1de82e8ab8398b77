"""How well the rare-word table fills the LM's `xxunk` slots: the true word's log-probability and top-10 hit rate.

The table (words, neighbours, LM-state keys) is built from the recipe's training clickbait and scored on the rare
words of its clean validation split (`mark_validation`: neither LM stage trained on them; the held-out slice is
untouched). Each combination of the evidence is one row: `mixture` is the table's `RareWords.distribution`;
`product` multiplies the evidence instead (each smoothed with plain frequency), so a word must fit the LM state and
both neighbours at once.

    .venv/bin/python bench/rare_fill.py [--model LM]
"""
import argparse
from pathlib import Path

import numpy as np

from clickbait.bundle import resolve_bundle
from clickbait.data import load_chakraborty, split_holdout
from clickbait.datablocks import VALID_COL, mark_validation
from clickbait.models import lm_contexts
from clickbait.rare import RareContexts, RareWords, rare_slots

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chakraborty2016"


def slots_of(token_lists, vocab, index):
    """(headline, position, true word index) for every slot whose word the table knows."""
    return [(h, i, index[tokens[i]]) for h, tokens in enumerate(token_lists)
            for i in rare_slots(tokens, vocab) if tokens[i] in index]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED))
    p.add_argument("--model", default=None)
    args = p.parse_args()
    lm = resolve_bundle(args.model, "lm")
    tok, vocab = lm.tokenizer, set(lm.tokenizer.vocab)
    train, _ = split_holdout(load_chakraborty(args.data))
    marked = mark_validation(train)
    clickbait = marked[marked.label == "clickbait"]
    fit_texts, eval_texts = clickbait[~clickbait[VALID_COL]]["text"].tolist(), clickbait[clickbait[VALID_COL]]["text"].tolist()
    fit_tokens, eval_tokens = tok.tokenize(fit_texts), tok.tokenize(eval_texts)
    table = RareWords.learn(fit_tokens, fit_texts, vocab)
    table.contexts = RareContexts.from_lm(lm.model, fit_tokens, tok, table)
    index = {w.lower(): i for i, w in enumerate(table.words)}
    slots = slots_of(eval_tokens, vocab, index)
    by_headline: dict[int, list[int]] = {}
    for h, i, _ in slots:
        by_headline.setdefault(h, []).append(i)
    heads = sorted(by_headline)
    states = lm_contexts(lm.model, [[tok.o2i.get(t, 0) for t in eval_tokens[h]] for h in heads],
                         [by_headline[h] for h in heads], prime=[tok.o2i["xxeos"]])
    state_of = {(h, i): s.numpy() for h, st in zip(heads, states) for i, s in zip(by_headline[h], st)}
    print(f"table from {len(fit_texts):,} training clickbait headlines: {len(table):,} rare words; "
          f"{len(slots):,} slots of {len(eval_texts):,} validation headlines hold a word it knows")

    prior = table.counts / table.counts.sum()

    def side(counts, token):
        seen = counts.get(token)
        out = np.zeros(len(table))
        if seen:
            out[list(seen.keys())] = list(seen.values())
            out /= out.sum()
        return out

    parts = []
    for h, i, true in slots:
        tokens = eval_tokens[h]
        before, after = tokens[i - 1] if i else "xxbos", tokens[i + 1] if i + 1 < len(tokens) else "xxeos"
        parts.append((true, table.distribution(before, after, state_of[(h, i)]),
                      side(table.after, before), side(table.before, after),
                      table.contexts.distribution(state_of[(h, i)], len(table))))

    def report(name, combine):
        logp, hits = [], []
        for true, mixture, left, right, knn in parts:
            probs = combine(mixture, left, right, knn)
            probs = probs / probs.sum()
            logp.append(np.log(probs[true]))
            hits.append(true in np.argsort(-probs)[:10])
        print(f"{name:<48} log-prob {np.mean(logp):7.3f}   top-10 {np.mean(hits):.1%}")

    report("prior only", lambda m, l, r, k: prior.copy())
    report("mixture (RareWords.distribution)", lambda m, l, r, k: m)
    # Naive Bayes would divide three conditionals by prior^2; `prior power` is how much of that is undone.
    for smooth in (0.1, 0.3):
        for knn_power in (0.5, 1.0):
            for prior_power in (0.0, 1.0, 2.0):
                report(f"product, smoothing {smooth}, kNN^{knn_power}, / prior^{prior_power}",
                       lambda m, l, r, k, s=smooth, a=knn_power, b=prior_power: ((1 - s) * l + s * prior) *
                       ((1 - s) * r + s * prior) * ((1 - s) * k + s * prior) ** a / prior ** b)


if __name__ == "__main__":
    main()
