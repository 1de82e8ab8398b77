"""Run by torchrun in tests: one general-LM stage on a small slice; each rank writes its final weights' digest."""
import hashlib
import json
import sys
from pathlib import Path

import torch.distributed as dist
from fastai.torch_core import rank_distrib

from clickbait.cli import _init_distributed
from clickbait.data import load_chakraborty, split_holdout
from clickbait.tokenizer import HeadlineTokenizer
from clickbait.train import Phase, RecipeConfig, train_general_lm

shared, work = sys.argv[1], Path(sys.argv[2])
_init_distributed()
train_df, _ = split_holdout(load_chakraborty(shared, sample=1700))
tokenizer = HeadlineTokenizer.train(train_df["text"], max_vocab=800)
learn = train_general_lm(train_df, tokenizer, RecipeConfig(preset="tiny", general=[Phase(2, 1e-2)]), work,
                         log=lambda *_: None)
digest = hashlib.sha256(b"".join(v.cpu().numpy().tobytes() for v in learn.model.state_dict().values())).hexdigest()
(work / f"rank{rank_distrib()}.json").write_text(json.dumps({"digest": digest, "world": dist.get_world_size(),
                                                             "valid_loss": float(learn.recorder.values[-1][1])}))
