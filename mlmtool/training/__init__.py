"""Building blocks of :mod:`mlmtool.finetune`: training data (:mod:`.data`) and the
masked-positions-only loss with held-out evaluation (:mod:`.loss`)."""
