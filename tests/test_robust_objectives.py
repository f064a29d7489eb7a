"""The robust objectives on the tiny RoBERTa, outside the Trainer: finite losses that fall, RoAST's masks,
RIFT's frozen teacher, and the batches adversarial augmentation builds."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.conftest import NEGATIVE, POSITIVE, synthetic_rows
from textarmor.attacks.resources import wordnet_available
from textarmor.errors import ParameterError
from textarmor.training import TrainingContext, make_objective
from textarmor.training.roast import SelectiveTraining, draw_masks, keep_probabilities

needs_wordnet = pytest.mark.skipif(not wordnet_available(), reason="WordNet 3.0 is not installed: "
                                   "apt-get install wordnet-base wordnet-sense-index (make test does it as root)")

# Perturbation sizes scaled to the tiny model's embeddings (hidden 32, std 0.02): the defaults are sized
# for RoBERTa-base and would drown this model's signal.
TINY_OPTIONS = {
    "standard": {},
    "pgd": {"adv_init_mag": 0.02, "adv_max_norm": 0.02, "adv_lr": 0.01},
    "freelb": {"adv_init_mag": 0.02, "adv_max_norm": 0.02, "adv_lr": 0.01},
    "roast": {"adv_eps": 0.005},
    "rift": {"adv_init_mag": 0.02, "adv_max_norm": 0.02, "adv_lr": 0.01, "rift_w_kl": 1.0},
    "ascc": {"synonyms": lambda word: _TINY_SYNONYMS.get(word, []), "ascc_beta": 1.0},
}
# Synonym groups of the synthetic task's filler words (whole tokens in the tiny BPE; the keywords are not):
# what WordNet is to PWWS.
_TINY_GROUPS = (["film", "movie"], ["plot", "story", "script"], ["acting", "cast"], ["really", "quite"])
_TINY_SYNONYMS = {w: [v for v in group if v != w] for group in _TINY_GROUPS for w in group}


def tiny_setup(tiny_base, method: str, seed: int = 0):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    config = AutoModelForSequenceClassification.from_pretrained(tiny_base).config
    torch.manual_seed(seed)  # weights from this seed, not from whatever the session fixture drew
    model = AutoModelForSequenceClassification.from_config(config)
    rows = synthetic_rows(64, seed=5)
    objective = make_objective(method, **TINY_OPTIONS[method])
    objective.setup(TrainingContext(model=model, tokenizer=tokenizer, texts=[r["text"] for r in rows],
                                    labels=[r["label"] for r in rows], label_names=["negative", "positive"]))
    collate = DataCollatorWithPadding(tokenizer)
    batches = []
    for start in range(0, len(rows), 16):
        chunk = rows[start:start + 16]
        enc = [dict(tokenizer(r["text"]), labels=int(r["label"] == "positive")) for r in chunk]
        batches.append(dict(collate(enc)))
    return model, objective, batches


@pytest.mark.parametrize("method", list(TINY_OPTIONS))
def test_loss_is_finite_and_falls(tiny_base, method):
    model, objective, batches = tiny_setup(tiny_base, method)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)  # includes RIFT's projection heads
    model.train()
    losses = []
    for step in range(48):
        loss, outputs = objective.loss(model, batches[step % len(batches)])
        assert torch.isfinite(loss) and loss.dim() == 0
        assert outputs.logits.shape[-1] == 2
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.7 * first, (method, first, last)


def test_freelb_accumulates_gradients_of_all_steps(tiny_base):
    """FreeLB's parameter gradient (inner backward + the Trainer's backward of the returned loss) equals the
    sum over the K=2 ascent steps of grad(loss_k / K), computed here by hand from the same random start."""
    from textarmor.training.embedding_space import EmbeddedBatch, cross_entropy

    model, objective, batches = tiny_setup(tiny_base, "freelb")
    model.eval()  # no dropout: the two computations see the same function
    weight = model.classifier.out_proj.weight
    torch.manual_seed(1)
    loss, _ = objective.loss(model, batches[0])
    loss.backward()
    freelb = weight.grad.clone()
    model.zero_grad()

    data, ball = EmbeddedBatch.from_batch(batches[0]), objective._ball
    torch.manual_seed(1)
    delta = ball.start(data.embed(model).detach(), data.mask)
    step_losses, step_grads = [], []
    for _ in range(2):
        step = data.mean(cross_entropy(data.forward(model, data.embed(model) + delta).logits, data.labels)) / 2
        step.backward()
        step_losses.append(float(step.detach()))
        step_grads.append(weight.grad.clone())
        model.zero_grad()
        delta = ball.ascend(delta, delta.grad, data.mask)
    torch.testing.assert_close(freelb, step_grads[0] + step_grads[1])
    assert not torch.allclose(freelb, step_grads[1])  # not just the last step's gradient
    assert float(loss.detach()) == pytest.approx(sum(step_losses), rel=1e-5)  # logged: mean of the K step losses


def test_keep_probabilities_follow_the_rank_sigmoid():
    fisher = [torch.tensor([[4.0, 1.0], [3.0, 0.0]]), torch.tensor([2.0])]
    probs = keep_probabilities(fisher, alpha=0.5, beta=2.0)
    ranks = {4.0: 1.0, 3.0: 0.75, 2.0: 0.5, 1.0: 0.25, 0.0: 0.0}
    for f, p in zip(fisher, probs):
        for value, prob in zip(f.flatten().tolist(), p.flatten().tolist()):
            assert prob == pytest.approx(1 / (1 + math.exp(-2 * 2.0 * (ranks[value] - 0.5))), rel=1e-5)


def test_roast_masks_have_expected_density_and_unbiased_scale():
    torch.manual_seed(0)
    fisher = [torch.rand(300, 200), torch.rand(40_000)]
    alpha, beta = 0.9, 10.0
    probs = keep_probabilities(fisher, alpha, beta)
    masks = draw_masks(probs, torch.Generator().manual_seed(3))
    kept = sum(int((m > 0).sum()) for m in masks)
    total = sum(m.numel() for m in masks)
    # E[density] = integral_0^1 sigmoid(2 beta (r - alpha)) dr
    expected = (math.log1p(math.exp(2 * beta * (1 - alpha))) - math.log1p(math.exp(-2 * beta * alpha))) / (2 * beta)
    assert kept / total == pytest.approx(expected, abs=0.005)
    for m, p in zip(masks, probs):
        nonzero = m > 0
        torch.testing.assert_close(m[nonzero], 1 / p[nonzero])  # kept gradients are scaled by 1/p
    # Same (seed, epoch) -> same masks: what keeps DDP ranks in step.
    again = draw_masks(probs, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(masks, again))


def test_roast_masks_are_unbiased_on_average():
    probs = keep_probabilities([torch.arange(10.0)], alpha=0.5, beta=1.0)
    generator = torch.Generator().manual_seed(0)
    mean = sum(draw_masks(probs, generator)[0] for _ in range(4000)) / 4000
    torch.testing.assert_close(mean, torch.ones(10), atol=0.08, rtol=0)


def test_selective_training_masks_gradients_before_the_optimizer_step():
    param = torch.nn.Parameter(torch.zeros(4))
    callback = SelectiveTraining(alpha=0.5, beta=1.0, fisher_batches=1)
    optimizer = torch.optim.SGD([param], lr=1.0)
    callback._params = [param]
    callback._masks = [torch.tensor([0.0, 2.0, 0.0, 4.0])]
    callback._fisher = [torch.zeros(4)]
    callback._hook = optimizer.register_step_pre_hook(callback._before_step)
    param.grad = torch.full((4,), 0.5)
    optimizer.step()
    torch.testing.assert_close(param.detach(), torch.tensor([0.0, -1.0, 0.0, -2.0]))  # lr * g * m / p
    torch.testing.assert_close(callback._fisher[0], torch.full((4,), 0.25))  # Fisher from the unmasked g
    assert callback._fisher_steps == 1


def test_rift_teacher_stays_frozen(tiny_base):
    model, objective, batches = tiny_setup(tiny_base, "rift")
    pretrained = {name: value.clone() for name, value in model.base_model.state_dict().items()}
    teacher = objective.teacher
    assert all(not p.requires_grad for p in teacher.parameters())
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for batch in batches:
        loss, _ = objective.loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    for name, value in teacher.state_dict().items():
        torch.testing.assert_close(value, pretrained[name], rtol=0, atol=0)
    assert not torch.equal(model.base_model.state_dict()["encoder.layer.0.attention.self.query.weight"],
                           pretrained["encoder.layer.0.attention.self.query.weight"])
    assert all(p.grad is None for p in teacher.parameters())
    objective.finalize(model)
    assert not any("rift" in name for name in model.state_dict())


def test_augmentation_mixes_added_examples_into_batches_with_weights(tiny_base):
    from textarmor.training import AdversarialAugmentation
    from textarmor.training.embedding_space import WEIGHT_KEY

    model, objective, batches = tiny_setup(tiny_base, "standard")
    rows = synthetic_rows(64, seed=5)
    augmentation = AdversarialAugmentation(attacker=lambda clf, texts, labels: [None] * len(texts), weight=0.5)
    augmentation.setup(TrainingContext(model=model, tokenizer=objective_tokenizer(tiny_base),
                                       texts=[r["text"] for r in rows], labels=[r["label"] for r in rows],
                                       label_names=["negative", "positive"], max_length=32))
    assert augmentation.extend(batches[0]) is batches[0]  # empty pool: batches untouched
    augmentation._add(["the film was dull dull", "a wonderful wonderful plot", "the cast", "music and story"],
                      ["negative", "positive", "negative", "positive"])
    seen = 0
    for batch in batches:  # one pass over the 64 rows
        out = augmentation.extend(batch)
        rows_in, rows_out = batch["input_ids"].size(0), out["input_ids"].size(0)
        added = rows_out - rows_in
        seen += added
        if added:
            assert out[WEIGHT_KEY].tolist() == [1.0] * rows_in + [0.5] * added
            assert out["attention_mask"].shape == out["input_ids"].shape
            assert torch.equal(out["labels"][:rows_in], batch["labels"])
            loss, _ = objective.loss(model, out)
            assert torch.isfinite(loss)
    assert seen == 4  # each added example once per epoch, as if it were part of the data


def objective_tokenizer(tiny_base):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base)


def test_synonym_table_lists_single_token_synonyms_and_nothing_for_other_tokens(tiny_base):
    from textarmor.training.synonyms import SynonymTable

    tokenizer = objective_tokenizer(tiny_base)
    table = SynonymTable.build(tokenizer, width=4, lookup=lambda word: _TINY_SYNONYMS.get(word, []),
                               skip=frozenset({"the"}))
    def token(word):
        ids = tokenizer.encode(" " + word, add_special_tokens=False)
        return ids[0] if len(ids) == 1 else None

    for group in _TINY_GROUPS:
        for word in group:
            row = table.ids[token(word)][table.valid[token(word)]].tolist()
            assert row == [token(word)] + [token(v) for v in group if v != word]  # the lookup's order
    multi = [w for w in POSITIVE + NEGATIVE if token(w) is None]
    assert multi, "some keywords are several tokens in the tiny BPE"
    wide = SynonymTable.build(tokenizer, width=2, lookup=lambda word: ["story", "script"] if word == "plot" else [])
    assert wide.ids[token("plot")].tolist() == [token("plot"), token("story")]  # at most width - 1
    the = tokenizer.encode(" the", add_special_tokens=False)[0]
    for token in [the, tokenizer.pad_token_id, tokenizer.cls_token_id]:
        assert table.valid[token].tolist() == [True, False, False, False]  # stop word, special tokens
    assert (table.ids[~table.valid] == np.repeat(np.arange(len(table.ids))[:, None], 4, 1)[~table.valid]).all()


def test_ascc_weights_are_convex_over_valid_synonyms_and_raise_the_loss(tiny_base):
    from textarmor.training.embedding_space import EmbeddedBatch, cross_entropy, unwrap

    model, objective, batches = tiny_setup(tiny_base, "ascc")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(24):  # a model whose scores depend on its input
        model(**batches[step % len(batches)]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    data = EmbeddedBatch.from_batch(batches[0])
    candidates, ok = objective.candidates(data.input_ids, data.mask.squeeze(-1))
    assert ok[..., 1:].any(), "the batch should contain keywords with synonyms"
    assert not ok[..., 1:][data.mask.squeeze(-1) == 0].any()  # padding never moves
    embedding = unwrap(model).get_input_embeddings()
    torch.manual_seed(0)
    weights = objective.attack(model, data, embedding(candidates).detach(), ok)
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:2]))
    assert (weights[~ok] == 0).all() and (weights >= 0).all()
    assert model.training  # the search ran in eval mode and restored the mode
    model.eval()
    with torch.no_grad():
        adversarial = (weights.unsqueeze(-1) * embedding(candidates)).sum(-2)
        clean_loss = cross_entropy(data.forward(model, data.embed(model)).logits, data.labels).mean()
        adv_loss = cross_entropy(data.forward(model, adversarial).logits, data.labels).mean()
    assert adv_loss > clean_loss


def test_the_adversarys_adam_steps_follow_torch_adam():
    from textarmor.training.ascc import adam_step

    torch.manual_seed(0)
    target = torch.randn(4, 6)
    reference = torch.randn(4, 6, requires_grad=True)
    optimizer = torch.optim.Adam([reference], lr=0.5)
    param, moments = reference.detach().clone(), None
    for step in range(1, 5):  # the gradient depends on where the parameter has moved
        grad = 2 * (param - target) * torch.arange(1.0, 7.0)
        reference.grad = 2 * (reference.detach() - target) * torch.arange(1.0, 7.0)
        optimizer.step()
        param, moments = adam_step(param, grad, moments, step, lr=0.5)
        assert torch.allclose(param, reference.detach(), atol=1e-6), step
    assert not torch.allclose(param, target)  # a real trajectory, not a fixed point


@needs_wordnet
def test_wordnet_synonym_table_of_a_real_vocabulary(tmp_path, monkeypatch):
    from textarmor.models import load_tokenizer, resolve_model_path
    from textarmor.training.synonyms import SynonymTable

    monkeypatch.setenv("TEXTARMOR_CACHE", str(tmp_path))
    try:
        tokenizer = load_tokenizer(resolve_model_path("minilm-l6"))
    except Exception as error:  # the bundled MiniLM is an optional extra
        pytest.skip(f"minilm-l6 is not installed: {error}")
    table = SynonymTable.for_tokenizer(tokenizer, width=8)
    vocab = tokenizer.get_vocab()
    movie = table.ids[vocab["movie"]][table.valid[vocab["movie"]]].tolist()
    assert vocab["film"] in movie and movie[0] == vocab["movie"]
    assert table.valid[vocab["the"]].sum() == 1 and table.valid[vocab["##ing"]].sum() == 1
    assert 0.2 < table.coverage() < 0.8
    cached = list((tmp_path / "synonym_tables").glob("*.npz"))
    assert len(cached) == 1
    again = SynonymTable.for_tokenizer(tokenizer, width=8)  # read back, not rebuilt
    assert np.array_equal(again.ids, table.ids) and np.array_equal(again.valid, table.valid)


def test_rift_with_the_paper_adversary_searches_synonym_hulls(tiny_base, monkeypatch):
    """rift_adversary=ascc: RIFT's adversarial input is a convex combination of synonym embeddings (the
    paper's ASCC), found against KL(p_adv || p_clean); the loss still falls and the options are recorded."""
    monkeypatch.setitem(TINY_OPTIONS, "rift", {**TINY_OPTIONS["rift"], "rift_adversary": "ascc", "ascc_steps": 2,
                                               "synonyms": TINY_OPTIONS["ascc"]["synonyms"]})
    model, objective, batches = tiny_setup(tiny_base, "rift")
    recorded = objective.hyperparameters()
    assert recorded["rift_adversary"] == "ascc" and recorded["ascc_steps"] == 2
    assert not any(key.startswith("adv_") for key in recorded)  # the ball's options are not in use
    searched = []
    original = objective._hull.search
    monkeypatch.setattr(objective._hull, "search", lambda *a, **k: searched.append(1) or original(*a, **k))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for step in range(48):
        loss, _ = objective.loss(model, batches[step % len(batches)])
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert len(searched) == 48
    assert sum(losses[-8:]) / 8 < 0.7 * sum(losses[:8]) / 8


def test_rift_rejects_an_unknown_adversary():
    with pytest.raises(ParameterError, match="rift_adversary must be one of ball, ascc"):
        make_objective("rift", rift_adversary="hotflip")


def test_ascc_names_a_tokenizer_that_is_not_the_models(tiny_base):
    from textarmor.training.embedding_space import EmbeddedBatch

    _, objective, batches = tiny_setup(tiny_base, "ascc")
    data = EmbeddedBatch.from_batch(batches[0])
    too_large = data.input_ids.clone()
    too_large[0, 1] = 10 ** 6  # an id no row of the synonym table has
    with pytest.raises(ParameterError, match="tokenizer given to setup is not the model's"):
        objective.candidates(too_large, data.mask.squeeze(-1))
