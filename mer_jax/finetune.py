"""A sweep's initial weights and frozen parameters (config section `init`).

Fine-tuning, the papers' recipe: seed 000 (Sec. 4.1) pre-trains on macro-expression
images and adds the micro-attention units only when fine-tuning on
micro-expressions; seed 001 (Sec. 4.1.1) pre-trains on CK+, RAF-DB and FER-2013;
seed 003 starts from a ResNet-18 pre-trained on facial expressions.
`init.pretrained` names one of:

* a finished sweep's work dir (a pre-training sweep, protocol `holdout`, or any
  sweep with `train.final_model`): every fold starts from its exported model
  (`mer_jax.export`). Leaves the pre-trained model lacks start fresh (new
  attention units; a new classifier when the class names differ), and each is
  listed in the log and in results.json `init.fresh_leaves`; a pre-trained leaf
  the model does not have, or of another shape, is an error naming it.
* a weights file the model reads itself (`ModelSpec.load_pretrained`; AMAN: a
  torchvision ResNet-18 state_dict, .npz or .pth).

`init.freeze` (a regex on '/'-joined parameter paths) freezes parameters on top
of the model's own frozen ones (`ModelSpec.frozen`): they get no updates and no
optimizer state (`engine.make_optimizer`).
"""

import dataclasses
import os
import re
from collections.abc import Callable, Mapping

import jax
import numpy as np

from mer_jax import export
from mer_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Initial:
    """Leaves merged into every fold's initialisation (None: random), and what results.json
    says of them (`init`)."""

    variables: dict | None
    record: dict


def flat(tree: Mapping, prefix: tuple[str, ...] = ()) -> dict[str, object]:
    """{'params/stem/kernel': leaf, ...} of a nested mapping of variables."""
    out = {}
    for key, value in tree.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping):
            out.update(flat(value, path))
        else:
            out["/".join(path)] = value
    return out


def nested(leaves: Mapping[str, object]) -> dict:
    """The inverse of `flat`."""
    out: dict = {}
    for name, value in leaves.items():
        *parents, last = name.split("/")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def initial_weights(config, model, spec, class_names, template, *, log=print) -> Initial:
    """The `init.pretrained` weights of `model`, whose variables' shapes are `template`
    (`models.variable_shapes`; see the module docstring)."""
    path = config.init.pretrained
    if not path:
        return Initial(None, {"pretrained": "", "loaded_leaves": 0, "fresh_leaves": []})
    template = flat(template)
    full = os.path.expanduser(path)
    if os.path.isdir(full):
        leaves, source = from_workdir(full, class_names, spec, log=log)
    else:
        leaves, source = flat(spec.load_pretrained(model, full)), path
    check_leaves(leaves, template, source)
    fresh = sorted(set(template) - set(leaves))
    log(f"initial weights: {len(leaves)} leaves from {source}")
    if fresh:
        log(f"initialised fresh ({len(fresh)} leaves the pre-trained model lacks): "
            + ", ".join(fresh))  # fmt: skip
    record = {"pretrained": path, "source": source, "loaded_leaves": len(leaves),
              "fresh_leaves": fresh}  # fmt: skip
    return Initial(nested(leaves), record)


def check_leaves(leaves: Mapping, template: Mapping, source: str) -> None:
    """Every pre-trained leaf is one of the model's, of the same shape (UserError naming it)."""
    for name, value in leaves.items():
        if name not in template:
            raise UserError(
                f"config key 'init.pretrained': leaf {name} of {source} is not in the model "
                "(another model or model_kwargs?)"
            )
        want, got = tuple(template[name].shape), tuple(np.shape(value))
        if want != got:
            raise UserError(
                f"config key 'init.pretrained': leaf {name} of {source} has shape {got}, "
                f"the model's is {want} (input channels or model_kwargs differ?)"
            )


def from_workdir(path: str, class_names, spec, *, log=print) -> tuple[dict, str]:
    """({leaf path: array}, description) of the model a finished sweep exported to `path`: its
    final model or its one fold (holdout); the classifier left out when classes differ."""
    exported = export.load(path)
    row, name = _pretrained_row(exported, path)
    leaves = flat(jax.tree_util.tree_map(lambda x: np.asarray(x[row]), exported.variables))
    source = f"{path} ({name}, {exported.meta['model']['name']} on {exported.input['dataset']})"
    if tuple(exported.class_names) != tuple(class_names):
        dropped = [n for n in leaves if _is_classifier(n, spec.classifier)]
        leaves = {n: v for n, v in leaves.items() if n not in dropped}
        log(
            f"init.pretrained: classes {list(exported.class_names)} of {path} differ from "
            f"{list(class_names)}: a new classifier ({', '.join(dropped) or 'none found'})"
        )
    return leaves, source


def _is_classifier(name: str, classifier: tuple[str, ...]) -> bool:
    """Whether variable `name` ('params/head/kernel') belongs to a `classifier` module path."""
    module = name.split("/", 1)[-1]
    return any(module.startswith(f"{c}/") for c in classifier)


def _pretrained_row(exported, path: str) -> tuple[int, str]:
    """(row, name) of the one model to start from: the final model, else the only fold (the
    first seed's when a run had several seeds)."""
    names = list(exported.fold_names)
    diverged = exported.meta.get("diverged") or {}
    usable = [i for i, n in enumerate(names) if n not in diverged]
    finals = [i for i in usable if export.is_final_model(names[i])]
    bases = {export.base_name(names[i]) for i in usable}
    if finals:
        return finals[0], names[finals[0]]
    if usable and len(bases) == 1:
        return usable[0], names[usable[0]]
    raise UserError(
        f"config key 'init.pretrained': {path} holds {len(usable)} usable fold models "
        f"({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}); fine-tuning starts "
        "from one: pre-train with protocol 'holdout' or train.final_model=True"
    )


@dataclasses.dataclass(frozen=True)
class Frozen:
    """Which parameters never change (hashable, so the optimizer and programs are cached): the
    model's own rule and/or the paths `pattern` matches ('/'-joined)."""

    pattern: str = ""
    model: Callable | None = None

    def __call__(self, path: tuple[str, ...]) -> bool:
        if self.model is not None and self.model(path):
            return True
        return bool(self.pattern) and re.search(self.pattern, "/".join(path)) is not None


def frozen_rule(pattern: str, spec, params: Mapping) -> tuple[Frozen | None, list[str]]:
    """(the optimizer's frozen rule, the frozen modules' names) of `init.freeze` = `pattern`
    and the model's own rule, over `params` (a tree of the model's parameters)."""
    if not pattern and spec.frozen is None:
        return None, []
    rule = Frozen(pattern, spec.frozen)
    names = [n for n in flat(params) if rule(tuple(n.split("/")))]
    if pattern and not any(re.search(pattern, n) for n in flat(params)):
        raise UserError(
            f"config key 'init.freeze': {pattern!r} matches no parameter of the model; "
            f"its modules: {sorted({n.split('/')[0] for n in flat(params)})}"
        )
    return rule, sorted({n.rsplit("/", 1)[0] for n in names})
