"""The permission table's rules and the object check, without requests (the role × route walk
is tests/apps/core/test_role_matrix.py)."""

from types import SimpleNamespace

import pytest

from apps.core.errors import Forbidden, check_may_change
from apps.core.permissions import OWN, READ, NotInTable, may_change, rule_for
from apps.tenants.models import Role

ME = SimpleNamespace(pk=1)


def test_the_roles_rank_viewer_member_admin_owner():
    ranks = [Role.rank(r) for r in (Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER)]
    assert ranks == sorted(ranks) == [0, 1, 2, 3]
    assert Role.at_least(Role.OWNER, Role.ADMIN) and not Role.at_least(Role.VIEWER, Role.MEMBER)


@pytest.mark.parametrize(
    ("role", "created_by_id", "allowed"),
    [
        (Role.VIEWER, 1, False),  # a viewer changes nothing, not even what they made earlier
        (Role.MEMBER, 1, True),
        (Role.MEMBER, 2, False),
        (Role.MEMBER, None, False),  # its maker left: only admins
        (Role.ADMIN, 2, True),
        (Role.OWNER, None, True),
        (None, 1, False),
    ],
)
def test_it_lets_members_change_only_what_they_made(role, created_by_id, allowed):
    assert may_change(role=role, user=ME, created_by_id=created_by_id) is allowed


def test_the_object_check_names_what_and_who():
    with pytest.raises(Forbidden) as refused:
        check_may_change(
            role=Role.MEMBER, user=ME, created_by_id=2, what="the run 'x'", action="cancel"
        )
    assert refused.value.status_code == 403
    assert (
        refused.value.message
        == "Only the member who created the run 'x', or an admin, can cancel it."
    )
    with pytest.raises(Forbidden) as viewer:
        check_may_change(role=Role.VIEWER, user=ME, created_by_id=1, what="it", action="cancel")
    assert viewer.value.message == "This needs the member role; you are viewer."


def test_a_route_or_method_missing_from_the_table_has_no_rule():
    assert rule_for("api:dataset-detail", "delete") is OWN
    assert rule_for("api:dataset-detail", "HEAD") is READ
    assert rule_for("api:run-cancel", "OPTIONS") is READ
    with pytest.raises(NotInTable) as unknown:
        rule_for("api:nothing-here", "GET")
    assert not unknown.value.route_known
    assert "not in the permission table" in unknown.value.message
    with pytest.raises(NotInTable) as method:
        rule_for("api:run-cancel", "PATCH")
    assert method.value.route_known
