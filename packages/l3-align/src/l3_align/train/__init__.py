"""SFT, DPO and the reward model on l3-core's parallel trainer (:mod:`l3_core.train`).

``packed`` is the shared objective base and batch source over packed rows, ``plain`` the plain
PyTorch model called as the trainer calls its Megatron model (reference log-probs, held-out
figures), ``job`` one run of a task from files to ``final/``, ``launch`` its ranks.
"""
