"""CatBoost's approximate SHAP contributions, from per-leaf tables built once per model.

In a symmetric (oblivious) tree, a row's approximate SHAP contributions (Saabas: along the row's path,
each split's feature gets the change in the weighted mean value of the subtree) depend on nothing but
the leaf the row reaches. CatBoost rebuilds those per-leaf values at every ``get_feature_importance``
call, ~7 ms for a 1000-tree model even for one row, or ~35 ms with its own pre-calculation: that was
the largest fixed cost of a stream batch holding a flagged transaction. Here the tables are built when
the model loads; a row then costs one CatBoost leaf-index lookup and a sparse sum. The values equal
CatBoost's ``ShapValues`` with ``shap_calc_type="Approximate"`` up to float rounding (unit-tested).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sparse
from catboost import CatBoostClassifier, Pool


class LeafContributions:
    """Approximate SHAP contributions of each feature, per tree and leaf, of a float-feature model."""

    def __init__(self, booster: CatBoostClassifier, table: np.ndarray) -> None:
        self._booster = booster
        self._trees, self._leaves, self._features = table.shape
        self._table = table.reshape(self._trees * self._leaves, self._features)

    @classmethod
    def of(cls, booster: CatBoostClassifier) -> LeafContributions | None:
        """The tables of ``booster``, or None for a model they do not cover (categorical features,
        non-symmetric trees, several output dimensions, scaled leaves or no stored leaf weights)."""
        if booster.get_cat_feature_indices():
            return None
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "model.json"
            booster.save_model(str(path), format="json")
            dump = json.loads(path.read_text())
        trees = dump.get("oblivious_trees")
        if not trees or dump.get("scale_and_bias", [1.0])[0] != 1.0:
            return None
        if not all(map(_covered, trees)):
            return None
        flat_index = {
            f["feature_index"]: f["flat_feature_index"] for f in dump["features_info"]["float_features"]
        }
        depth = max(len(tree["splits"]) for tree in trees)
        table = np.zeros((len(trees), 2**depth, len(booster.feature_names_)))
        for index, tree in enumerate(trees):
            _fill_tree(table[index], tree, flat_index)
        return cls(booster, table)

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        """Contributions of every feature (columns) for every row of ``matrix`` (the model's features)."""
        rows = len(matrix)
        leaves = self._booster.calc_leaf_indexes(Pool(matrix)).astype(np.int64)
        cells = (leaves + np.arange(self._trees) * self._leaves).ravel()
        membership = sparse.csr_matrix(
            (np.ones(rows * self._trees), cells, np.arange(0, rows * self._trees + 1, self._trees)),
            shape=(rows, self._trees * self._leaves),
        )
        return membership @ self._table


def _covered(tree: dict[str, Any]) -> bool:
    """A tree with leaf weights, one value per leaf and float splits only."""
    return (
        bool(tree.get("leaf_weights"))
        and len(tree["leaf_values"]) == 2 ** len(tree["splits"])
        and all(split["split_type"] == "FloatFeature" for split in tree["splits"])
    )


def _fill_tree(table: np.ndarray, tree: dict[str, Any], flat_index: dict[int, int]) -> None:
    """Add one tree's contributions to ``table[leaf, feature]``.

    A leaf's index has one bit per split, the last split the most significant: the root's. The node a
    leaf passes at depth k is the leaf index shifted right by (depth - k); a node without weight is 0.
    """
    splits, values = tree["splits"], np.asarray(tree["leaf_values"], dtype=np.float64)
    depth = len(splits)
    weights = [np.asarray(tree["leaf_weights"], dtype=np.float64)]
    sums = [values * weights[0]]
    for _ in range(depth):
        weights.insert(0, weights[0].reshape(-1, 2).sum(axis=1))
        sums.insert(0, sums[0].reshape(-1, 2).sum(axis=1))
    means = [np.divide(s, w, out=np.zeros_like(s), where=w != 0) for s, w in zip(sums, weights, strict=True)]
    means[depth] = values
    leaves = np.arange(2**depth)
    for level in range(depth):
        feature = flat_index[splits[depth - level - 1]["float_feature_index"]]
        child, node = leaves >> (depth - level - 1), leaves >> (depth - level)
        table[: 2**depth, feature] += means[level + 1][child] - means[level][node]
