"""Clip -> model input: apex spotting, TIM, Eulerian magnification, optical flow, face crop.

`representations` turns one clip into each seed's model input (the views
table); the other modules are its steps. `bench` is `mer-jax bench-preprocess`.
"""
