"""Every API route and page × method × role against the permission table
(apps/core/permissions.py): an allowed role is not refused (any answer but 403: a 400 for an
empty body is fine), a refused one gets 403 and nothing changes. For "own" rules a member is
tried on an object someone else created (refused) and on one they created (allowed).

The routes are found by walking the URL configuration, as the isolation test does, so a new
route cannot escape: one missing from the table fails here with what to add.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import get_resolver, reverse

from apps.core.permissions import PERMISSIONS, ROLES, Rule, rule_for
from apps.tenants.models import Membership, Role
from tests.apps.core.test_api_isolation import (
    _walk,
    basename_of,
    methods_of,
    snapshot,
)
from tests.conftest import PASSWORD, as_file, png_bytes, zip_upload
from tests.support.routes import PAGE_OBJECTS

pytestmark = pytest.mark.django_db(transaction=False)

WALKED_METHODS = ("get", "post", "put", "patch", "delete")
#: URL arguments of routes whose arguments are not an object's id
OTHER_KWARGS: dict[str, dict[str, str]] = {
    "accounts:password_reset_confirm": {"uidb64": "MQ", "token": "set-password"},
    "accounts:email_change_confirm": {"token": "not-a-signed-token"},
    "invitations:accept": {"token": "not-an-invitation-token"},
}


def all_routes() -> list[tuple[str, Any, str]]:
    """(name, pattern, route) of every named route but the Django admin's (platform staff)."""
    found = []
    for namespace, pattern, route in _walk(get_resolver().url_patterns):
        if namespace == "admin" or not pattern.name:
            continue
        found.append((f"{namespace}:{pattern.name}" if namespace else pattern.name, pattern, route))
    return found


def route_methods(name: str, pattern: Any) -> list[str]:
    """The methods to try: what an API view implements; what the table lists for a page (a
    function view does not say which it takes; org_page answers 405 to the others)."""
    if name.startswith("api:"):
        return [m.upper() for m in methods_of(pattern.callback) if m in WALKED_METHODS]
    return list(PERMISSIONS.get(name, {}))


def test_every_route_and_method_is_in_the_permission_table():
    missing, stale = [], []
    routes = all_routes()
    names = {name for name, _, _ in routes}
    for name, pattern, _route in routes:
        if name not in PERMISSIONS:
            missing.append(
                f"{name}: add it to PERMISSIONS in apps/core/permissions.py, e.g. "
                f'"{name}": {{"GET": READ, "POST": CREATE}}, then run '
                "`python scripts/permission_table.py --write`"
            )
            continue
        if name.startswith("api:"):
            for method in route_methods(name, pattern):
                if method not in PERMISSIONS[name]:
                    missing.append(f"{name} {method}: add a rule for it to PERMISSIONS[{name!r}]")
            implemented = set(route_methods(name, pattern))
            stale += [
                f"{name} {m}: the view does not take it; remove it from PERMISSIONS"
                for m in PERMISSIONS[name]
                if m not in implemented
            ]
    stale += [
        f"{name}: no such route; remove it from PERMISSIONS"
        for name in PERMISSIONS
        if name not in names
    ]
    unnamed = [
        f"/{route}: give it a name= so the permission table can list it"
        for namespace, pattern, route in _walk(get_resolver().url_patterns)
        if namespace != "admin" and not pattern.name
    ]
    assert not unnamed, "\n".join(unnamed)
    assert not missing, "Routes missing from the permission table:\n" + "\n".join(missing)
    assert not stale, "\n".join(stale)


@dataclass
class Person:
    role: str
    user: Any


@dataclass
class World:
    organization: Any
    people: dict[str, Person]
    #: world key ("dataset", "run", ...) -> the owner's object and the member's object
    by_owner: dict[str, Any]
    by_member: dict[str, Any]


def _objects_of(tenant_org: Any, user: Any, role: str, name: str) -> dict[str, Any]:
    """One object of every kind the routes name, all made by `user`, for real."""
    from apps.accounts.services import api_key_create
    from apps.analytics.services import usage_record
    from apps.core.scoping import tenant_scope
    from apps.datasets.services import dataset_create, dataset_version_ingest
    from apps.deployments.services import endpoint_create
    from apps.training.execution import training_run_execute
    from apps.training.models import ModelVersion
    from apps.training.services import model_config_create, training_run_start

    version = dataset_create(
        organization=tenant_org, user=user, name=f"{name} shapes", upload=zip_upload()
    )
    version = dataset_version_ingest(version_id=version.pk)
    config = model_config_create(
        organization=tenant_org,
        user=user,
        name=f"{name} model",
        template="leptonnet",
        dataset_version=version,
        hyperparameters={"epochs": 1, "batch_size": 16},
    )
    run = training_run_execute(run_id=training_run_start(model_config=config, user=user).pk)
    with tenant_scope(tenant_org):
        model_version = ModelVersion.objects.get(run=run)
        item = version.items.first()
    endpoint = endpoint_create(organization=tenant_org, user=user, model_version=model_version)
    key, _raw = api_key_create(organization=tenant_org, user=user, name=f"{name} key")
    usage = usage_record(organization=tenant_org, endpoint=endpoint, status_code=200, latency_ms=1)
    # The team's routes are admins' (no own rule): a colleague's membership and an invitation
    # for each side, made by the owner, who alone may invite.
    from django.contrib.auth import get_user_model

    from apps.tenants.team import invitation_create

    colleague = get_user_model().objects.create_user(
        email=f"colleague-of-{role}@acme.example", password=PASSWORD
    )
    member = Membership.objects.create(user=colleague, organization=tenant_org, role=Role.MEMBER)
    owner = Membership.objects.get(organization=tenant_org, role=Role.OWNER).user
    invitation = invitation_create(
        organization=tenant_org,
        actor=owner,
        email=f"invited-by-{role}@acme.example",
        role=Role.MEMBER,
        site_url="http://testserver/",
    )
    return {
        "api-key": key,
        "dataset": version.dataset,
        "dataset-version": version,
        "dataset-item": item,
        "model": config,
        "run": run,
        "model-version": model_version,
        "endpoint": endpoint,
        "usage": usage,
        "member": member,
        "invitation": invitation,
    }


@pytest.fixture
def team(tenant) -> dict[str, Person]:
    """A person of each role in the tenant's organization (its owner signed it up)."""
    from django.contrib.auth import get_user_model

    people = {Role.OWNER: Person(Role.OWNER, tenant.user)}
    for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER):
        user = get_user_model().objects.create_user(email=f"{role}@acme.example", password=PASSWORD)
        Membership.objects.create(user=user, organization=tenant.organization, role=role)
        people[role] = Person(role, user)
    return people


@pytest.fixture
def world(tenant, team) -> World:
    """The team, with objects of every kind made by the owner and by the member."""
    people = team
    org = tenant.organization
    return World(
        organization=org,
        people=people,
        by_owner=_objects_of(org, tenant.user, Role.OWNER, "owner's"),
        by_member=_objects_of(org, people[Role.MEMBER].user, Role.MEMBER, "member's"),
    )


def body_for(method: str) -> dict:
    if method in ("GET", "DELETE"):
        return {}
    if method in ("POST", "PUT"):
        return {"data": {"image": as_file(png_bytes())}}
    return {"data": json.dumps({"name": "changed"}), "content_type": "application/json"}


def target_key(name: str) -> str | None:
    return basename_of(name) if name.startswith("api:") else PAGE_OBJECTS.get(name)


@dataclass
class Case:
    name: str
    method: str
    role: str
    url: str
    #: whose object the URL names: "owner", "member" or "" (no object)
    whose: str
    rule: Rule

    def expected(self) -> str:
        """'allowed', 'refused' (403) or 'hidden' (404, as missing)."""
        if not self.rule.allows(self.role):
            return "refused"
        owner_only = self.rule.own and not Role.at_least(self.role, Role.ADMIN)
        if owner_only and self.whose == "owner":
            return "hidden" if self.rule.hidden else "refused"
        return "allowed"

    def __str__(self) -> str:
        whose = f" on the {self.whose}'s object" if self.whose else ""
        return f"{self.method} {self.url} ({self.name}) as {self.role}{whose}"


def cases(world: World) -> tuple[list[Case], list[str]]:
    found, problems = [], []
    for name, pattern, route in all_routes():
        for method in route_methods(name, pattern):
            rule = rule_for(name, method)
            targets: list[tuple[str, dict]] = [("", OTHER_KWARGS.get(name, {}))]
            if "<uuid:pk>" in route:
                key = target_key(name)
                if key is None or key not in world.by_owner:
                    problems.append(
                        f"{name}: no object to aim at; add its kind to _objects_of() (API) or "
                        "the page to tests/support/routes.py PAGE_OBJECTS"
                    )
                    continue
                targets = [
                    ("owner", {"pk": world.by_owner[key].pk}),
                    ("member", {"pk": world.by_member[key].pk}),
                ]
            for whose, kwargs in targets:
                url = reverse(name, kwargs=kwargs or None)
                for role in ROLES:
                    found.append(Case(name, method, role, url, whose, rule))
    return found, problems


def test_every_route_answers_each_role_as_the_table_says(world):
    all_cases, problems = cases(world)
    assert not problems, "\n".join(problems)
    assert len(all_cases) > 300  # the walk really reached the routes
    before = snapshot(world.organization)
    failures = []
    clients = {role: Client() for role in ROLES}
    for role, client in clients.items():
        client.force_login(world.people[role].user)
    for case in all_cases:
        client = clients[case.role]
        with transaction.atomic():
            call = getattr(client, case.method.lower())
            response = call(case.url, **body_for(case.method))
            expected = case.expected()
            status = response.status_code
            if expected == "allowed" and status == 403:
                failures.append(f"{case}: refused (403) but the table allows it")
            elif expected == "refused":
                if status != 403:
                    failures.append(f"{case}: {status}, but the table refuses it (403)")
                elif snapshot(world.organization) != before:
                    failures.append(f"{case}: refused, yet something changed")
            elif expected == "hidden" and status != 404:
                failures.append(f"{case}: {status}, but another's object is hidden (404)")
            transaction.set_rollback(True)  # what an allowed call changed is undone
        if case.name == "accounts:logout":
            client.force_login(world.people[case.role].user)
    assert not failures, "\n".join(failures)


def test_a_refusal_names_the_role_needed(client, team):
    client.force_login(team[Role.VIEWER].user)
    api = client.post("/api/v1/datasets/", {"name": "x"})
    assert api.status_code == 403
    assert api.json()["error"]["message"] == "This needs the member role; you are viewer."
    page = client.post(reverse("datasets:list"), {"name": "x"})
    assert page.status_code == 403
    assert "This needs the member role; you are viewer." in page.content.decode()


def test_a_member_is_told_who_may_change_anothers_object(client, team, ready_version):
    client.force_login(team[Role.MEMBER].user)
    response = client.delete(f"/api/v1/datasets/{ready_version.dataset_id}/")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == (
        "Only the member who created the dataset 'shapes', or an admin, can delete it."
    )
    page = client.post(reverse("datasets:delete", kwargs={"pk": ready_version.dataset_id}))
    assert page.status_code == 403
    assert "Only the member who created the dataset" in page.content.decode()


def test_an_api_key_acts_with_the_role_of_the_person_who_made_it(client, team):
    from apps.accounts.services import api_key_create

    _key, raw = api_key_create(
        organization=team[Role.OWNER].user.memberships.get().organization,
        user=team[Role.VIEWER].user,
        name="viewer's key",
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/datasets/", **auth).status_code == 200
    refused = client.post("/api/v1/datasets/", {"name": "x"}, **auth)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "This needs the member role; you are viewer."


def test_a_route_missing_from_the_table_is_refused_to_everyone(client, team, monkeypatch):
    from apps.core import permissions

    # A copy without the two routes: deleting from the table itself would put them back at
    # its end, out of the order the README's table follows.
    without = {
        k: v for k, v in PERMISSIONS.items() if k not in ("api:dataset-list", "datasets:list")
    }
    monkeypatch.setattr(permissions, "PERMISSIONS", without)
    client.force_login(team[Role.OWNER].user)
    response = client.get("/api/v1/datasets/")
    assert response.status_code == 403
    assert "not in the permission table" in response.json()["error"]["message"]
    assert client.get(reverse("datasets:list")).status_code == 403
