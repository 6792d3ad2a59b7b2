"""Planned actions keep typed arguments as JSON instead of a subject string and key counters.

Revision ID: 0003_planned_action_arguments
Revises: 0002_planned_action_kind
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003_planned_action_arguments"
down_revision = "0002_planned_action_kind"
branch_labels = None
depends_on = None

# Each kind of planned action by the one argument its subject string held.
SUBJECT_ARGUMENT = {
    "ballot_reminder": "ballot_id",
    "ballot_at_risk": "ballot_id",
    "ballot_deadline": "ballot_id",
    "milestone_reminder": "milestone",
    "milestone_overdue": "milestone",
    "agency_reminder": "agency",
    "agency_final_reminder": "agency",
    "agency_escalation": "agency",
    "submission_risk": "check",
    "confirm_submission": "outbox_key",
    "digest": "day",
}

planned_action = sa.table(
    "plannedaction",
    sa.column("id", sa.Integer()),
    sa.column("action", sa.String()),
    sa.column("key", sa.String()),
    sa.column("subject", sa.String()),
    sa.column("arguments", sa.JSON()),
)


def arguments_of(action: str, key: str, subject: str) -> dict[str, Any]:
    """Return the arguments of a planned action stored the old way, by its action's name."""
    if action not in SUBJECT_ARGUMENT:
        if subject:
            raise ValueError(f"planned action {key!r}: no arguments are known for {action!r}")
        return {}
    name = SUBJECT_ARGUMENT[action]
    arguments: dict[str, Any] = {name: int(subject) if name == "ballot_id" else subject}
    # The counters were the key's last part: the escalation's number, or the looks in Sent
    # and, after a dot, the waits since.
    counters = key.rpartition(":")[2]
    if action.startswith("agency_"):
        arguments["escalation"] = int(counters) if action == "agency_escalation" else 0
    if action == "confirm_submission":
        looks, _, waits = counters.partition(".")
        arguments.update(looks=int(looks), waits=int(waits or 0))
    return arguments


def subject_of(action: str, arguments: dict[str, Any]) -> str:
    """Return the subject string a planned action's arguments were made from."""
    name = SUBJECT_ARGUMENT.get(action)
    return "" if name is None else str(arguments.get(name, ""))


def upgrade() -> None:
    """Add the arguments, fill them from each row's subject and key, then drop the subject."""
    with op.batch_alter_table("plannedaction") as batch:
        batch.add_column(sa.Column("arguments", sa.JSON(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(planned_action.c.id, planned_action.c.action,
                                        planned_action.c.key, planned_action.c.subject))
    for row_id, action, key, subject in rows.all():
        connection.execute(planned_action.update().where(planned_action.c.id == row_id)
                           .values(arguments=arguments_of(action, key, subject)))
    with op.batch_alter_table("plannedaction") as batch:
        batch.alter_column("arguments", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("subject")


def downgrade() -> None:
    """Put the subject back from the arguments (the key still holds the counters)."""
    with op.batch_alter_table("plannedaction") as batch:
        batch.add_column(sa.Column("subject", sa.String(length=200), nullable=False,
                                   server_default=""))
    connection = op.get_bind()
    rows = connection.execute(sa.select(planned_action.c.id, planned_action.c.action,
                                        planned_action.c.arguments))
    for row_id, action, arguments in rows.all():
        connection.execute(planned_action.update().where(planned_action.c.id == row_id)
                           .values(subject=subject_of(action, arguments)))
    with op.batch_alter_table("plannedaction") as batch:
        batch.alter_column("subject", existing_type=sa.String(length=200),
                           server_default=None)
        batch.drop_column("arguments")
