"""The papers' training recipes as functions that set a config's keys, one module per paper.

The table configs in `experiments/<paper>/` start from `mer_jax.config.base()`, call their
paper's recipe for the table's setting (protocol, data, schedule, optimizer, augmentation)
and add the table's figures (`c.paper`, `mer_jax/experiments.py`). A recipe says in its
docstring where the paper gives each value and what is chosen where it is silent;
docs/papers.md has the papers' words. `synthetic(c, ...)` variants run the same recipe on
the synthetic stand-in at a size a 2-core CPU trains in about a minute.
"""

# The dataset config each paper table reads, by dataset (licensed data, built with
# `mer-jax data build NAME/CONFIG --manual-dir DIR`): frames configs where the recipe
# computes its input at load time, views where a builder stores it.
FRAMES_224 = {
    "casme2": "casme2/cropped_224",
    "samm": "samm/raw_face_224",
    "smic": "smic/hs_cropped_224",
    "casme": "casme/cropped_224",
}
