"""execution nodes array: state.nodes from {id: {...}} to [{"id": id, ...}], order kept

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from migrations.batches import JsonRewrite, rewrite_json_column

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _to_array(state):
    if not isinstance(state, dict) or not isinstance(state.get("nodes"), dict):
        return state
    # A node whose value has an id of its own, not its key: {"id": key, **value} would keep one of the two and
    # lose the other (and the downgrade could not turn it back), so the state stays as it is.
    if any(isinstance(v, dict) and "id" in v and v["id"] != k for k, v in state["nodes"].items()):
        return state
    nodes = [
        {"id": key, **value} if isinstance(value, dict) else {"id": key, "value": value}
        for key, value in state["nodes"].items()
    ]
    return {**state, "nodes": nodes}


def _to_object(state):
    if not isinstance(state, dict) or not isinstance(state.get("nodes"), list):
        return state
    nodes = {}
    for node in state["nodes"]:
        # Not an array this revision wrote (an object's keys are strings, each once): leave it as it is, since
        # an object would lose a node to another of the same id, or turn a number id into a string.
        if not isinstance(node, dict) or not isinstance(node.get("id"), str) or node["id"] in nodes:
            return state
        rest = {k: v for k, v in node.items() if k != "id"}
        nodes[node["id"]] = rest["value"] if set(rest) == {"value"} else rest
    return {**state, "nodes": nodes}


# What it does to each value: the wizard's SQL preview counts and shows it on the database's own rows.
REWRITE = JsonRewrite("executions", "id", "state", up=_to_array, down=_to_object)


def upgrade() -> None:
    rewrite_json_column(revision, REWRITE)


def downgrade() -> None:
    rewrite_json_column(revision, REWRITE, down=True)
