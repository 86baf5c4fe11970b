"""Exact path-dependent Tree SHAP for a LightGBM booster, several times faster than
``pred_contrib``: the same numbers (to floating-point rounding), in numba over all cores.

Why: scoring a million open deals with their top drivers spent most of its time in
LightGBM's ``pred_contrib`` (6,300-12,000 rows/s on two cores, issue 17).  That is Lundberg's
recursive algorithm, ``O(T·L·D²)`` per row (trees, leaves, depth).  Fast TreeSHAP v2 (Yang
2021) moves the ``D²`` part out of the per-row work:

For one leaf with value ``v`` whose path splits on the distinct features ``F`` (``D`` of
them), let ``z_j`` be the share of training rows that follow the path at feature ``j``'s
splits (the product of the child/parent counts there, as LightGBM's ``data_count``) and
``o_j(x)`` be 1 when row ``x`` follows the path at every split on ``j``, else 0.  The leaf's
term of the value function for a coalition ``S`` is ``v · Π_{j∈S} o_j · Π_{j∈F∖S} z_j``;
its Shapley value for ``i ∈ F`` is

    φ_i = v · (o_i − z_i) / z_i · Q(A ∖ {i}),    Q(B) = Σ_{S⊆B} w(|S|, D) · Π_{j∈F∖S} z_j

where ``A`` is the set of path features ``x`` agrees with and ``w(s, D) = s!(D−s−1)!/D!``.
``Q`` depends on the leaf only, so it is tabulated once per leaf for every subset (``2^D``
values, a zeta transform); a row then costs one lookup per (leaf, path feature):
``O(T·L·D)``.  The bias column is each tree's expected value (leaf values weighted by
their training counts), as LightGBM's.

A row's terms from a group of leaves depend only on the directions it takes at the splits
on those leaves' paths.  So each subtree whose paths hold at most :data:`MAX_GROUP_SPLITS`
splits (the splits inside it and above it) gets a table of its leaves' summed terms for
every pattern of those directions (``2^splits`` rows over the subtree's features; a few MB
for a 200-tree model, built in milliseconds): a row then costs, per tree, its split
directions and one table row per group, ``O(T·(S + F_t))``.  A leaf deeper than that is
summed leaf by leaf as above.

:func:`TreeShap.of` returns ``None`` for a model it does not cover (multiclass, linear
trees, a path with more than :data:`MAX_PATH_FEATURES` features, a zero count), and the
caller keeps ``pred_contrib``.  ``tests/models/test_fast_shap.py`` holds it equal to
``pred_contrib`` to 1e-9 on the deal model.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import lightgbm as lgb
import numba
import numpy as np

logger = logging.getLogger(__name__)

MAX_PATH_FEATURES = 16
"""Paths splitting on more distinct features would tabulate over 65,536 subsets per leaf."""
MAX_GROUP_SPLITS = 12
"""A group of leaves is tabled over at most this many split directions (4,096 patterns)."""
_K_ZERO = 1e-35  # LightGBM's kZeroThreshold: |x| at or below it is "zero" for missing=Zero
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
_SPLITS = ("feature", "threshold", "missing", "default_left", "categorical")
_SPLITS += ("cat_start", "cat_values")
_LEAVES = ("path_start", "path_node", "path_right", "path_slot", "slot_start", "slot_feature")
_LEAVES += ("slot_scale", "slot_zero", "q_start", "q_values")
_GROUPS = ("group_nodes_start", "group_nodes", "group_features_start", "group_features")
_GROUPS += ("group_leaves_start", "group_leaves", "table_start", "tables", "slot_column")
_GROUPS += ("loose_leaves",)
_LISTS = (
    *("feature", "threshold", "missing", "default_left", "categorical", "cat_values"),
    *("path_node", "path_right", "path_slot", "slot_feature", "slot_scale", "slot_zero"),
    "q_values",
)


PARALLEL_ROWS = 512
"""Rows from which the explanation is spread over the cores (fewer: the calling thread)."""


@dataclass(frozen=True)
class TreeShap:
    """A booster's trees flattened into arrays, with each leaf's ``Q`` table."""

    n_features: int
    tree_nodes: np.ndarray  # [T+1] first internal node of each tree
    tree_leaves: np.ndarray  # [T+1] first leaf of each tree
    feature: np.ndarray  # per internal node: split feature
    threshold: np.ndarray  # per internal node: numeric threshold
    missing: np.ndarray  # per internal node: 0 None, 1 Zero, 2 NaN
    default_left: np.ndarray  # per internal node
    categorical: np.ndarray  # per internal node: a categorical split
    cat_start: np.ndarray  # [nodes+1] each categorical node's left-going categories
    cat_values: np.ndarray
    path_start: np.ndarray  # [leaves+1] each leaf's path (root to leaf)
    path_node: np.ndarray  # internal node (global) on the path
    path_right: np.ndarray  # 1 if the path goes right there
    path_slot: np.ndarray  # the node's feature's position in the leaf's distinct features
    slot_start: np.ndarray  # [leaves+1] each leaf's distinct features
    slot_feature: np.ndarray
    slot_scale: np.ndarray  # v / z_j (so φ = scale · (o − z) · Q)
    slot_zero: np.ndarray  # z_j
    q_start: np.ndarray  # [leaves+1] each leaf's Q table (2^D values)
    q_values: np.ndarray
    group_nodes_start: np.ndarray  # [G+1] each leaf group's splits (bit k: k-th split)
    group_nodes: np.ndarray
    group_features_start: np.ndarray  # [G+1] each group's features: its table's columns
    group_features: np.ndarray
    group_leaves_start: np.ndarray  # [G+1] each group's leaves
    group_leaves: np.ndarray
    table_start: np.ndarray  # [G] each group's table in ``tables``
    tables: np.ndarray
    slot_column: np.ndarray  # per leaf slot (of a grouped leaf): its column in the group
    loose_leaves: np.ndarray  # leaves in no group (deep paths): summed leaf by leaf
    bias: float

    @classmethod
    def of(
        cls,
        booster: lgb.Booster,
        num_iteration: int | None = None,
        max_group_splits: int = MAX_GROUP_SPLITS,
    ) -> TreeShap | None:
        """The tables of ``booster``'s first ``num_iteration`` trees, or ``None`` when the
        model is outside what this explainer reproduces (see the module docstring)."""
        model = booster.dump_model(num_iteration=num_iteration)
        if model.get("num_tree_per_iteration", 1) != 1:
            return None
        builder = _Builder(model["max_feature_idx"] + 1, max_group_splits)
        for tree in model["tree_info"]:
            if not builder.add(tree):
                return None
        return builder.build(cls)

    @property
    def table_mb(self) -> float:
        """Memory held by the groups' tables, in MB."""
        return self.tables.nbytes / 2**20

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP values of each row of ``matrix`` (float64, one column per feature) plus the
        bias column: ``pred_contrib``'s output, shape ``(n, n_features + 1)``."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        out = np.zeros((len(matrix), self.n_features + 1), dtype=np.float64)
        if len(matrix):
            kernel = _explain if len(matrix) >= PARALLEL_ROWS else _explain_few
            kernel(matrix, out, self._splits(), self._leaves(), self._groups())
        out[:, -1] = self.bias
        return out

    def _splits(self) -> tuple:
        return self._arrays(*_SPLITS)

    def _leaves(self) -> tuple:
        return self._arrays(*_LEAVES)

    def _groups(self) -> tuple:
        return self._arrays(*_GROUPS)

    def _arrays(self, *names: str) -> tuple:
        """The named arrays, in order: what the compiled kernels take (numba reads tuples
        of arrays, not objects)."""
        return tuple(getattr(self, name) for name in names)


class _Builder:
    """Walks ``dump_model``'s trees into flat lists (internal nodes and leaves numbered
    globally, trees one after another)."""

    def __init__(self, n_features: int, max_group_splits: int) -> None:
        self.n_features = n_features
        self.max_group_splits = max_group_splits
        self.groups: list[tuple[list[int], list[int]]] = []  # (splits, leaves)
        self.loose: list[int] = []
        self.lists: dict[str, list] = {k: [] for k in _LISTS}
        self.tree_nodes, self.tree_leaves = [0], [0]
        self.cat_start, self.path_start, self.slot_start, self.q_start = [0], [0], [0], [0]
        self.bias = 0.0

    def add(self, tree: dict) -> bool:
        root = tree["tree_structure"]
        if "leaf_value" in root and "split_index" not in root:  # one leaf: bias only
            self.bias += float(root["leaf_value"])
            self._close_tree()
            return True
        first_node = len(self.lists["feature"])
        total = float(root["internal_count"])
        nodes: list[dict] = []
        self._number(root, nodes)
        node_id = {id(n): first_node + i for i, n in enumerate(nodes)}
        for node in nodes:
            self._split(node)
        leaves: list[tuple[dict, list[tuple[int, int, float]]]] = []
        self._paths(root, [], leaves, node_id)
        leaves.sort(key=lambda p: p[0]["leaf_index"])
        first_leaf = len(self.path_start) - 1
        leaf_id = {id(leaf): first_leaf + i for i, (leaf, _) in enumerate(leaves)}
        expected = 0.0
        for leaf, path in leaves:
            count = float(leaf["leaf_count"])
            expected += count / total * float(leaf["leaf_value"])
            if not self._leaf(float(leaf["leaf_value"]), path):
                return False
        self.bias += expected
        self._group(root, [], node_id, leaf_id)
        self._close_tree()
        return True

    def _group(
        self, node: dict, above: list[int], node_id: dict[int, int], leaf_id: dict[int, int]
    ) -> None:
        """Group the leaves under ``node`` if the splits above and inside it are few enough
        to table; else group each child's leaves (a leaf too deep stays loose)."""
        inside: list[dict] = []
        self._number(node, inside)
        splits = above + [node_id[id(n)] for n in inside]
        if len(splits) <= self.max_group_splits:
            under: list[tuple[dict, list]] = []
            self._paths(node, [], under, node_id)
            self.groups.append((splits, [leaf_id[id(leaf)] for leaf, _ in under]))
        elif "split_index" not in node:
            self.loose.append(leaf_id[id(node)])
        else:
            for child in (node["left_child"], node["right_child"]):
                self._group(child, [*above, node_id[id(node)]], node_id, leaf_id)

    def _close_tree(self) -> None:
        self.tree_nodes.append(len(self.lists["feature"]))
        self.tree_leaves.append(len(self.path_start) - 1)

    def _number(self, node: dict, out: list[dict]) -> None:
        if "split_index" in node:
            out.append(node)
            self._number(node["left_child"], out)
            self._number(node["right_child"], out)

    def _split(self, node: dict) -> None:
        lists = self.lists
        lists["feature"].append(int(node["split_feature"]))
        lists["missing"].append(_MISSING[node["missing_type"]])
        lists["default_left"].append(bool(node["default_left"]))
        is_cat = node["decision_type"] == "=="
        lists["categorical"].append(is_cat)
        if is_cat:
            lists["threshold"].append(0.0)
            lists["cat_values"].extend(int(c) for c in str(node["threshold"]).split("||"))
        else:
            lists["threshold"].append(float(node["threshold"]))
        self.cat_start.append(len(lists["cat_values"]))

    def _paths(
        self,
        node: dict,
        path: list[tuple[int, int, float]],
        out: list,
        node_id: dict[int, int],
    ) -> None:
        """Each leaf with its path: (internal node, went right, child count / node count)."""
        if "split_index" not in node:
            out.append((node, path))
            return
        count = float(node["internal_count"])
        for right, child in ((0, node["left_child"]), (1, node["right_child"])):
            child_count = child.get("internal_count", child.get("leaf_count"))
            step = (node_id[id(node)], right, float(child_count) / count)
            self._paths(child, [*path, step], out, node_id)

    def _leaf(self, value: float, path: list[tuple[int, int, float]]) -> bool:
        lists = self.lists
        slots: dict[int, int] = {}
        zero: list[float] = []
        for node, right, fraction in path:
            feature = lists["feature"][node]
            if feature not in slots:
                slots[feature] = len(zero)
                zero.append(1.0)
            zero[slots[feature]] *= fraction
            lists["path_node"].append(node)
            lists["path_right"].append(right)
            lists["path_slot"].append(slots[feature])
        if len(zero) > MAX_PATH_FEATURES or min(zero, default=1.0) <= 0.0:
            logger.info("fast Tree SHAP does not cover this model: pred_contrib is used")
            return False
        lists["slot_feature"].extend(slots)  # dicts keep insertion order: slot order
        lists["slot_zero"].extend(zero)
        lists["slot_scale"].extend(value / z for z in zero)
        lists["q_values"].extend(_q_table(np.asarray(zero)))
        self.path_start.append(len(lists["path_node"]))
        self.slot_start.append(len(lists["slot_feature"]))
        self.q_start.append(len(lists["q_values"]))
        return True

    def build(self, cls: type[TreeShap]) -> TreeShap:
        lists = self.lists

        def array(name: str, dtype) -> np.ndarray:
            return np.asarray(lists[name], dtype=dtype)

        def ints(values: list[int]) -> np.ndarray:
            return np.asarray(values, dtype=np.int64)

        slot_feature = array("slot_feature", np.int64)
        slot_start = ints(self.slot_start)
        slot_column = np.zeros(len(slot_feature), dtype=np.int64)
        nodes_start, nodes, features_start, features = [0], [], [0], []
        leaves_start, group_leaves, table_start, size = [0], [], [], 0
        for splits, leaves in self.groups:
            # the group's features (its table's columns), and each of its slots' column
            columns: dict[int, int] = {}
            for leaf in leaves:
                for slot in range(slot_start[leaf], slot_start[leaf + 1]):
                    feature = int(slot_feature[slot])
                    slot_column[slot] = columns.setdefault(feature, len(columns))
            nodes.extend(splits)
            nodes_start.append(len(nodes))
            features.extend(columns)
            features_start.append(len(features))
            group_leaves.extend(leaves)
            leaves_start.append(len(group_leaves))
            table_start.append(size)
            size += (1 << len(splits)) * len(columns)
        shap = cls(
            n_features=self.n_features,
            tree_nodes=ints(self.tree_nodes),
            tree_leaves=ints(self.tree_leaves),
            feature=array("feature", np.int64),
            threshold=array("threshold", np.float64),
            missing=array("missing", np.int8),
            default_left=array("default_left", np.bool_),
            categorical=array("categorical", np.bool_),
            cat_start=ints(self.cat_start),
            cat_values=array("cat_values", np.int64),
            path_start=ints(self.path_start),
            path_node=array("path_node", np.int64),
            path_right=array("path_right", np.int8),
            path_slot=array("path_slot", np.int64),
            slot_start=slot_start,
            slot_feature=slot_feature,
            slot_scale=array("slot_scale", np.float64),
            slot_zero=array("slot_zero", np.float64),
            q_start=ints(self.q_start),
            q_values=array("q_values", np.float64),
            group_nodes_start=ints(nodes_start),
            group_nodes=ints(nodes),
            group_features_start=ints(features_start),
            group_features=ints(features),
            group_leaves_start=ints(leaves_start),
            group_leaves=ints(group_leaves),
            table_start=ints(table_start),
            tables=np.zeros(size, dtype=np.float64),
            slot_column=slot_column,
            loose_leaves=ints(self.loose),
            bias=self.bias,
        )
        if len(table_start):
            _fill_tables(len(shap.feature), shap._leaves(), shap._groups())
        return shap


def _q_table(zero: np.ndarray) -> np.ndarray:
    """``Q(B)`` for every subset ``B`` (bit ``k``: the leaf's ``k``-th distinct feature) of a
    leaf's path features with zero fractions ``zero``: each subset's own term, then summed over
    its subsets one bit at a time (zeta transform)."""
    d = len(zero)
    if d == 0:
        return np.ones(1)
    weights = np.array(
        [math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d) for s in range(d)]
    )
    subsets = np.arange(1 << d)
    members = (subsets[:, None] >> np.arange(d)) & 1  # [subset, feature] in S
    size = members.sum(axis=1)
    # Π_{j∉S} z_j; |S| = d has no weight (the Shapley sum runs over S ⊆ F ∖ {i})
    outside = np.prod(np.where(members == 1, 1.0, zero[None, :]), axis=1)
    q = np.where(size < d, weights[np.minimum(size, d - 1)] * outside, 0.0)
    for k in range(d):
        has = (subsets >> k) & 1 == 1
        q[has] += q[subsets[has] ^ (1 << k)]
    return q


@numba.njit(cache=True, nogil=True, inline="always")
def _leaf_terms(leaf, right, leaves, out, columns, column_of):  # pragma: no cover - compiled
    """Add leaf ``leaf``'s SHAP terms for split directions ``right`` (1: went right) to
    ``out[columns[slot]]`` (``column_of``: a slot's column, or its feature)."""
    (
        path_start,
        path_node,
        path_right,
        path_slot,
        slot_start,
        slot_feature,
        slot_scale,
        slot_zero,
        q_start,
        q_values,
    ) = leaves
    agree = np.int64(-1)  # bit k: the row follows the path at every split on slot k's feature
    for p in range(path_start[leaf], path_start[leaf + 1]):
        if right[path_node[p]] != path_right[p]:
            agree &= ~(np.int64(1) << path_slot[p])
    first = slot_start[leaf]
    d = slot_start[leaf + 1] - first
    agree &= (np.int64(1) << d) - 1
    q = q_start[leaf]
    for k in range(d):
        bit = np.int64(1) << k
        one = 1.0 if agree & bit else 0.0
        out[columns + column_of[first + k]] += (
            slot_scale[first + k] * (one - slot_zero[first + k]) * q_values[q + (agree & ~bit)]
        )


@numba.njit(parallel=True, cache=True, nogil=True)
def _fill_tables(n_nodes, leaves, groups):  # pragma: no cover - compiled
    """Each group's summed leaf terms for every pattern of its split directions."""
    nodes_start, nodes, features_start, _, leaves_start, group_leaves, table_start, tables = groups[
        :8
    ]
    slot_column = groups[8]
    for g in numba.prange(len(table_start)):
        right = np.empty(max(n_nodes, 1), dtype=np.int8)  # only the group's splits are read
        first, bits = nodes_start[g], nodes_start[g + 1] - nodes_start[g]
        width = features_start[g + 1] - features_start[g]
        for pattern in range(1 << bits):
            for k in range(bits):
                right[nodes[first + k]] = (pattern >> k) & 1
            row = table_start[g] + pattern * width
            for i in range(leaves_start[g], leaves_start[g + 1]):
                _leaf_terms(group_leaves[i], right, leaves, tables, row, slot_column)


@numba.njit(parallel=True, cache=True, nogil=True)
def _explain(matrix, out, splits, leaves, groups):  # pragma: no cover - compiled
    """Many rows, spread over the cores."""
    for row in numba.prange(matrix.shape[0]):
        _explain_row(row, matrix, out, splits, leaves, groups)


@numba.njit(cache=True, nogil=True)
def _explain_few(matrix, out, splits, leaves, groups):  # pragma: no cover - compiled
    """A few rows (a request's), on the calling thread: waking the parallel kernel's
    threads costs more than the rows, and they would spin beside the service's workers."""
    for row in range(matrix.shape[0]):
        _explain_row(row, matrix, out, splits, leaves, groups)


@numba.njit(cache=True, nogil=True, inline="always")
def _explain_row(row, matrix, out, splits, leaves, groups):  # pragma: no cover - compiled
    feature, threshold, missing, default_left, categorical, cat_start, cat_values = splits
    nodes_start, nodes, features_start, features, _, _, table_start, tables = groups[:8]
    loose_leaves = groups[9]
    slot_feature = leaves[5]
    n_nodes = feature.shape[0]
    width = out.shape[1]
    flat = out.reshape(-1)
    x = matrix[row]
    right = np.empty(max(n_nodes, 1), dtype=np.int8)
    # every split's direction for this row (LightGBM's Decision, tree.h)
    for node in range(n_nodes):
        value = x[feature[node]]
        if categorical[node]:
            go_right = 1
            # as LightGBM: truncated toward zero (-0.5 is category 0), negative: right
            if not np.isnan(value) and value > -1.0:
                code = int(value)
                for c in range(cat_start[node], cat_start[node + 1]):
                    if cat_values[c] == code:
                        go_right = 0
                        break
            right[node] = go_right
        else:
            kind = missing[node]
            if np.isnan(value) and kind != 2:
                value = 0.0
            if (kind == 1 and -_K_ZERO <= value <= _K_ZERO) or (kind == 2 and np.isnan(value)):
                right[node] = 0 if default_left[node] else 1
            else:
                right[node] = 0 if value <= threshold[node] else 1
    for g in range(len(table_start)):  # each group's terms for this row's directions
        pattern = 0
        for k in range(nodes_start[g + 1] - nodes_start[g]):
            pattern |= np.int64(right[nodes[nodes_start[g] + k]]) << k
        f0 = features_start[g]
        w = features_start[g + 1] - f0
        base = table_start[g] + pattern * w
        for j in range(w):
            out[row, features[f0 + j]] += tables[base + j]
    for leaf in loose_leaves:
        _leaf_terms(leaf, right, leaves, flat, row * width, slot_feature)
