"""Masked-LM fine-tuning, one module per job: :mod:`.config` (settings), :mod:`.data`
(corpus → chunks → masking), :mod:`.loss` (loss at masked positions, held-out evaluation),
:mod:`.model` (what is trained), :mod:`.callbacks` (Trainer callbacks), :mod:`.output`
(checks, saving, the summary) and :mod:`.train` (:func:`~mlmtool.training.train.finetune`)."""
