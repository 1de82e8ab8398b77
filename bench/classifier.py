"""Classifier quality on the held-out slice (never trained on or used for selection), plus how click-baity the
LM's own generated headlines look to it. Writes the confusion matrix PNG (fastai ClassificationInterpretation).

Usage: python bench/classifier.py [--model CLASSIFIER] [--lm LM] [--png bench/out/confusion.png]
"""
import argparse
import time
from pathlib import Path

from fastai.interpret import ClassificationInterpretation
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

from clickbait.bundle import resolve_bundle
from clickbait.classify import classify_headlines
from clickbait.train import classifier_learner
from clickbait.data import load_chakraborty, split_holdout
from clickbait.datablocks import clas_dataloaders
from clickbait.generate import generate_headlines

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chakraborty2016"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=None)
    p.add_argument("--lm", default=None)
    p.add_argument("--data", default=str(SHARED))
    p.add_argument("--png", default="bench/out/confusion.png")
    p.add_argument("--generated", type=int, default=1000)
    args = p.parse_args()
    clas, lm = resolve_bundle(args.model, "classifier"), resolve_bundle(args.lm, "lm")
    _, held = split_holdout(load_chakraborty(args.data))
    t0 = time.time()
    pred = classify_headlines(held["text"], clas)
    dt = time.time() - t0
    y, yhat = (held["label"] == "clickbait").values, (pred["label"] == "clickbait").values
    print(f"held-out: {len(held):,} headlines ({y.sum():,} clickbait), classified in {dt:.1f}s")
    print(f"accuracy {accuracy_score(y, yhat):.4f} (goal >= 0.990; SVM 2016: 0.93, BaitBuster 2017: 0.983), "
          f"F1 {f1_score(y, yhat):.4f}, ROC-AUC {roc_auc_score(y, pred['clickbait']):.4f}")
    print(f"confusion matrix [news, clickbait] x [news, clickbait]:\n{confusion_matrix(y, yhat)}")
    print(f"training time (from the bundle): {clas.config.get('train_minutes')} min")

    # fastai's own interpretation, on the same held-out slice, for the PNG
    dls = clas_dataloaders(held, clas.tokenizer, bs=64, valid_col=None, valid_pct=0.5, seed=0)
    learn = classifier_learner(dls, lm, clas.config.get("seq_len", 72), threshold=clas.config.get("threshold"))
    learn.model.load_state_dict(clas.model.state_dict())
    test_dl = learn.dls.test_dl(held, with_labels=True)
    interp = ClassificationInterpretation.from_learner(learn, dl=test_dl)
    interp.plot_confusion_matrix(title="clickbait classifier, held-out slice")
    import matplotlib.pyplot as plt
    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    plt.savefig(args.png, dpi=90, bbox_inches="tight")
    print(f"confusion matrix PNG: {args.png}")

    generated = generate_headlines(args.generated, seed=0, model=lm)
    share = (classify_headlines(generated, clas)["label"] == "clickbait").mean()
    print(f"generated headlines labelled clickbait: {share:.1%} of {len(generated):,} (goal >= 90%)")


if __name__ == "__main__":
    main()
