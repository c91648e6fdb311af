"""Learned motion magnifier (Oh et al., ECCV 2018), used by AMAN's view (seed 003).

`model`: the encoder / manipulator / decoder network and checkpoint loading;
`data`: the synthetic moving-texture training pairs; `train`: its training loop
and `mer-jax train-magnifier`.
"""
