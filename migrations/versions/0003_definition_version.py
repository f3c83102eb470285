"""definition version: "version": "1.0" in every definition, "metadata": {} on every node

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Downgrade removes "version": "1.0" and empty "metadata" objects again; a
definition that carried exactly those before 0003 loses them (the only values
the upgrade adds, so the downgrade cannot tell them apart).
"""

from migrations.batches import JsonRewrite, rewrite_json_column

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _add(definition):
    if not isinstance(definition, dict):
        return definition
    nodes = definition.get("nodes")
    new_nodes = nodes
    if isinstance(nodes, list) and any(isinstance(n, dict) and "metadata" not in n for n in nodes):
        new_nodes = [{**n, "metadata": {}} if isinstance(n, dict) and "metadata" not in n else n for n in nodes]
    if "version" in definition and new_nodes is nodes:
        return definition
    out = dict(definition)
    out.setdefault("version", "1.0")
    if new_nodes is not nodes:
        out["nodes"] = new_nodes
    return out


def _remove(definition):
    if not isinstance(definition, dict):
        return definition
    nodes = definition.get("nodes")
    new_nodes = nodes
    if isinstance(nodes, list) and any(isinstance(n, dict) and n.get("metadata") == {} for n in nodes):
        new_nodes = [
            {k: v for k, v in n.items() if k != "metadata"} if isinstance(n, dict) and n.get("metadata") == {} else n
            for n in nodes
        ]
    if definition.get("version") != "1.0" and new_nodes is nodes:
        return definition
    out = {k: v for k, v in definition.items() if not (k == "version" and v == "1.0")}
    if new_nodes is not nodes:
        out["nodes"] = new_nodes
    return out


# What it does to each value: the wizard's SQL preview counts and shows it on the database's own rows.
REWRITE = JsonRewrite("workflows", "id", "definition", up=_add, down=_remove)


def upgrade() -> None:
    rewrite_json_column(revision, REWRITE)


def downgrade() -> None:
    rewrite_json_column(revision, REWRITE, down=True)
