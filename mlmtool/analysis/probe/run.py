"""``probe(lm, train, test)``: read, embed once, then train and score every probe per layer."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ...errors import MlmtoolError
from . import labels as lab
from . import structural as st
from .data import ProbeSentences, prepare, read_treebank, word_states
from .result import DEFAULT_TASKS, TASKS, ProbeConfig, ProbeResult, TrainedProbes, load_probes


def check_tasks(tasks: Iterable[str]) -> list[str]:
    """The tasks in :data:`TASKS` order, each once.

    Raises:
        MlmtoolError: an unknown or no task (``param="tasks"``).
    """
    tasks = list(tasks)
    for t in tasks:
        if t not in TASKS:
            raise MlmtoolError(f"tasks: unknown task '{t}'; choose from {', '.join(TASKS)}", param="tasks")
    if not tasks:
        raise MlmtoolError(f"tasks: give at least one of {', '.join(TASKS)}", param="tasks")
    return [t for t in TASKS if t in tasks]


def check_layers(lm, layers: Sequence[int] | tuple[int, int] | None) -> list[int]:
    """Hidden-state layers to probe: None = all ``0..L``; a list, or ``(first, last)``.

    Raises:
        MlmtoolError: a layer outside ``0..L`` or an empty range (``param="layers"``).
    """
    top = lm.num_layers
    if layers is None:
        return list(range(top + 1))
    if isinstance(layers, tuple) and len(layers) == 2:
        layers = list(range(layers[0], layers[1] + 1))
    layers = sorted(set(int(x) for x in layers))
    if not layers or layers[0] < 0 or layers[-1] > top:
        raise MlmtoolError(f"layers must lie in 0-{top} for model '{lm.name}' (0 = the embedding output, "
                           f"{top} = the last layer)", param="layers")
    return layers


def _label_task(task, k, layer, train_x, test_x, train, test, config, control, probes, loaded, keep):
    """One label task at one layer: ``{"accuracy", "control_accuracy", "selectivity"}``
    (``keep``: the test items scored, those whose label was seen in training)."""
    x_te, y_te, _ = lab.features(task, test_x, test)
    x_te, y_te = x_te[keep], [y for y, k in zip(y_te, keep) if k]
    if loaded is not None:
        return {"accuracy": loaded.labels[(task, layer)].accuracy(x_te, y_te),
                "control_accuracy": None, "selectivity": None}
    x_tr, y_tr, _ = lab.features(task, train_x, train)
    p = lab.fit(x_tr, y_tr, config.C, config.solver, config.max_iter, config.seed)
    probes.labels[(task, layer)] = p
    acc = p.accuracy(x_te, y_te)
    out = {"accuracy": acc, "control_accuracy": None, "selectivity": None}
    if control is not None:
        c_tr, c_te = control[task]
        c_te = [y for y, k in zip(c_te, keep) if k]
        ctrl = lab.fit(x_tr, c_tr, config.C, config.solver, config.max_iter, config.seed).accuracy(x_te, c_te)
        out.update(control_accuracy=ctrl, selectivity=acc - ctrl)
    return out


def _structural_task(task, layer, train_x, test_x, train, test, gold, config, probes, loaded):
    """One structural task at one layer: its metrics (:func:`structural.evaluate`)."""
    if loaded is not None:
        proj = loaded.structural[(task, layer)]
    else:
        proj = st.fit(train_x, train, task, gold[("train", task)], config.rank, config.epochs, config.lr,
                      config.batch_sentences, config.seed, config.dev_fraction)
        probes.structural[(task, layer)] = proj
    return st.evaluate(task, st.predict(proj, test_x, test, task), gold[("test", task)], test)


def _label_setup(tasks, train: ProbeSentences | None, test: ProbeSentences, control: bool, seed: int,
                 loaded: TrainedProbes | None, ignore_unseen: bool):
    """``(control labels {task: (train, test)} or None, baselines, unseen labels, kept test
    items {task: bool [n]})`` for the label tasks.

    Raises:
        MlmtoolError: test labels never seen in training, unless ``ignore_unseen``.
    """
    ctrl, baselines, unseen, keep = ({} if control else None), {}, {}, {}
    for task in (t for t in tasks if t in lab.LABEL_TASKS):
        _, y_te, types_te = lab.features(task, np.zeros((test.n_words, 1)), test)
        if train is None:
            seen = loaded.labels[(task, loaded.layers[0])].classes
        else:
            _, y_tr, types_tr = lab.features(task, np.zeros((train.n_words, 1)), train)
            seen = y_tr
        keep[task] = np.array([y in set(seen) for y in y_te], dtype=bool)
        if lab.unseen(seen, y_te):
            unseen[task] = lab.unseen(seen, y_te)
        if train is None:
            continue
        baselines[task] = {"majority": lab.majority_accuracy(y_tr, [y for y, k in zip(y_te, keep[task]) if k])}
        if ctrl is not None:
            ctrl[task] = lab.control_labels(y_tr, types_tr, types_te, seed)
    if unseen and not ignore_unseen:
        listed = "; ".join(f"{task} " + ", ".join(f"{k} ({v})" for k, v in sorted(c.items()))
                           for task, c in unseen.items())
        raise MlmtoolError(f"test: labels never seen in training: {listed}; pass ignore_unseen to skip "
                           "those words (they are counted)", param=("test", "ignore_unseen"))
    return ctrl, baselines, unseen, keep


def _read(lm, source, what: str, tasks) -> ProbeSentences:
    trees, columns = read_treebank(source, what)
    try:
        return prepare(lm, trees, columns, need_xpos="xpos" in tasks)
    except MlmtoolError as exc:
        raise MlmtoolError(f"{what}: {exc}", param=what) from None


def probe(lm, train: str | Path | Sequence | None, test: str | Path | Sequence,
          tasks: Iterable[str] = DEFAULT_TASKS, layers: Sequence[int] | tuple[int, int] | None = None,
          control: bool = False, config: ProbeConfig | None = None, load: str | Path | None = None,
          ignore_unseen: bool = False, progress: Callable[[str], None] | None = None) -> ProbeResult:
    """Train probes on ``train`` and score them on ``test``, layer by layer.

    Label probes (``upos``, ``xpos``, ``deprel``): multinomial logistic regression
    (:mod:`.labels`; control tasks of Hewitt & Liang 2019 with ``control=True``). Structural
    probes (``distance``, ``depth``): Hewitt & Manning 2019 (:mod:`.structural`). Each word's
    vector is the mean of its pieces' hidden states (:func:`.data.word_states`), one forward
    pass per batch for every layer.

    Args:
        lm: a model from :func:`mlmtool.load` (no MLM head needed).
        train, test: CoNLL-U files, or trees from
            :func:`~mlmtool.analysis.heads.treebank.read_conllu`; ``train`` may be None with
            ``load``.
        tasks: from :data:`TASKS` (default ``upos, deprel, distance, depth``).
        layers: hidden-state layers (0 = embedding output, L = last; a list or ``(a, b)``);
            None = all.
        control: also train control tasks and report selectivity.
        config: :class:`ProbeConfig` (C, solver, rank, epochs, ...).
        load: a folder of probes saved from a result (``result.probes.save``): evaluate
            them on ``test`` instead of training (tasks and layers are the saved ones).
        ignore_unseen: skip test words whose gold label the probe never saw in training
            (counted in ``counts`` as ``test_unseen_<task>``, listed in ``unseen_labels``);
            False refuses them, as no linear probe can predict them.
        progress: called with a short line before each step.

    Returns:
        :class:`ProbeResult` (``.probes``: the trained probes, unless loaded).

    Raises:
        MlmtoolError: an unreadable, empty or non-CoNLL-U file (``param="train"``/``"test"``),
            an unknown task, layers outside ``0..L``, probes of another model, test labels
            never seen in training (without ``ignore_unseen``).

    Example:
        >>> result = probe(lm, "train.conllu", "test.conllu", tasks=["upos"])  # doctest: +SKIP
        >>> result.to_dict()["layers"][0]["upos"]["accuracy"]  # doctest: +SKIP
    """
    config = config or ProbeConfig()
    say = progress or (lambda _: None)
    loaded = load_probes(load, lm) if load is not None else None
    tasks = check_tasks(loaded.tasks if loaded else tasks)
    layers = check_layers(lm, loaded.layers if loaded else layers)
    if loaded is None and train is None:
        raise MlmtoolError("train: give a training treebank (or load saved probes)", param="train")
    train_s = None if loaded else _read(lm, train, "train", tasks)
    test_s = _read(lm, test, "test", tasks)
    ctrl, baselines, unseen, keep = _label_setup(tasks, train_s, test_s, control and not loaded, config.seed,
                                                 loaded, ignore_unseen)
    say("running the model")
    train_x = None if loaded else word_states(lm, train_s, layers, config.batch_size)
    test_x = word_states(lm, test_s, layers, config.batch_size)
    gold = {(name, t): st.gold_targets(s, t) for name, s in (("train", train_s), ("test", test_s))
            if s is not None for t in tasks if t in st.STRUCTURAL_TASKS}
    probes = TrainedProbes(lm.name, lm.model.config.hidden_size, lm.num_layers, tasks, layers)
    args = (tasks, train_x, test_x, train_s, test_s, gold, config, ctrl, probes, loaded, keep)
    scores = [_score_layer(args, k, layer, say) for k, layer in enumerate(layers)]
    counts = _counts(train_s, test_s) | {f"test_unseen_{t}": int(sum(c.values())) for t, c in unseen.items()}
    return ProbeResult(lm.name, tasks, layers, scores, baselines, counts, unseen, config,
                       bool(ctrl), None if loaded else probes)


def _score_layer(args, k: int, layer: int, say) -> dict:
    """Every task at one layer (``k``: its index among the probed layers)."""
    tasks, train_x, test_x, train_s, test_s, gold, config, ctrl, probes, loaded, keep = args
    say(f"layer {layer}")
    trx = None if train_x is None else train_x[k]
    row = {}
    for task in tasks:
        if task in lab.LABEL_TASKS:
            row[task] = _label_task(task, k, layer, trx, test_x[k], train_s, test_s, config, ctrl, probes, loaded,
                                    keep[task])
        else:
            row[task] = _structural_task(task, layer, trx, test_x[k], train_s, test_s, gold, config, probes, loaded)
    return row


def _counts(train: ProbeSentences | None, test: ProbeSentences) -> dict[str, int]:
    out = {}
    for name, s in (("train", train), ("test", test)):
        if s is not None:
            out.update({f"{name}_sentences": len(s), f"{name}_words": s.n_words,
                        f"{name}_skipped": s.n_skipped, f"{name}_unaligned": s.n_unaligned})
    return out


__all__ = ["check_layers", "check_tasks", "probe"]
