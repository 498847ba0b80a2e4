"""Team: invitations by email, role changes, removal and leaving, in services, pages and the API.

Every fixture set has an outsider organization; its members and invitations never show up, and
its ids answer 404 like missing ones.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from apps.accounts.models import ApiKey, User
from apps.audit.models import AuditEvent
from apps.core.errors import ServiceError
from apps.tenants.models import Invitation, Membership, Role
from apps.tenants.team import (
    invitation_accept,
    invitation_create,
    invitation_resend,
    invitation_revoke,
    invitation_signup,
    member_leave,
    member_remove,
    member_role_change,
)
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

SITE = "http://testserver/"
MEMBERS_API = "/api/v1/members/"
INVITATIONS_API = "/api/v1/invitations/"


@pytest.fixture(autouse=True)
def _own_throttle_counters(settings) -> None:
    """Sign-ups through an invitation count against the sign-up throttle: keys of this test's
    own, as in tests/apps/accounts/conftest.py."""
    throttle = settings.CACHES["throttle"] | {"KEY_PREFIX": f"throttle-test-{uuid.uuid4().hex}"}
    settings.CACHES = settings.CACHES | {"throttle": throttle}


def basic(user: Any) -> dict[str, str]:
    token = base64.b64encode(f"{user.email}:{PASSWORD}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def add_member(organization: Any, email: str, role: str = Role.MEMBER) -> Membership:
    user = User.objects.create_user(email=email, password=PASSWORD)
    return Membership.objects.create(organization=organization, user=user, role=role)


def owner_membership(tenant: Any) -> Membership:
    return Membership.objects.get(organization=tenant.organization, user=tenant.user)


def last_link(to: str) -> str:
    """The accept link in the last message sent to `to`."""
    message = [m for m in mail.outbox if to in m.to][-1]
    return re.search(r"http://testserver/invitations/[\w-]+/", message.body).group(0)


def token_of(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[1]


@pytest.fixture
def invite(tenant, django_capture_on_commit_callbacks):
    """invite(email, role="member", actor=owner) -> (invitation, token), the email sent."""

    def send(email: str, role: str = Role.MEMBER, actor: Any = None) -> tuple[Invitation, str]:
        with django_capture_on_commit_callbacks(execute=True):
            invitation = invitation_create(
                organization=tenant.organization,
                actor=actor or tenant.user,
                email=email,
                role=role,
                site_url=SITE,
            )
        return invitation, token_of(last_link(invitation.email))

    return send


# --- invitations: services ----------------------------------------------------------------


def test_it_emails_a_single_use_link_and_stores_only_the_tokens_hash(tenant, outsider, invite):
    invitation, token = invite("  New.Person@Example.COM ", Role.ADMIN)

    assert invitation.email == "new.person@example.com"
    assert invitation.role == Role.ADMIN
    assert invitation.invited_by == tenant.user
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert len(token) >= 40
    for row in Invitation.objects.values():
        assert token not in json.dumps(row, default=str)
    for row in AuditEvent.all_tenants.values():
        assert token not in json.dumps(row, default=str)
    message = mail.outbox[-1]
    assert message.to == ["new.person@example.com"]
    assert "Acme Vision" in message.subject
    assert tenant.user.email in message.body and "as Admin" in message.body
    days = (invitation.expires_at - timezone.now()).total_seconds() / 86400
    assert 6.9 < days <= 7
    assert AuditEvent.all_tenants.filter(
        organization=tenant.organization, action="invitation.create"
    ).exists()


def test_it_takes_the_expiry_from_the_setting(tenant, invite, settings):
    settings.LEPTON_INVITATION_DAYS = 2
    invitation, _token = invite("two@days.example")
    days = (invitation.expires_at - timezone.now()).total_seconds() / 86400
    assert 1.9 < days <= 2


def test_inviting_the_same_address_again_refreshes_its_one_pending_invitation(tenant, invite):
    first, old_token = invite("again@example.com")
    second, new_token = invite("AGAIN@example.com", Role.ADMIN)

    assert second.pk == first.pk
    assert Invitation.objects.filter(organization=tenant.organization).count() == 1
    assert second.role == Role.ADMIN
    with pytest.raises(ServiceError, match="not valid"):
        invitation_accept(token=old_token, user=add_member_user("again@example.com"))
    assert new_token != old_token


def add_member_user(email: str) -> User:
    return User.objects.create_user(email=email, password=PASSWORD)


def test_it_refuses_to_invite_someone_already_a_member(tenant):
    add_member(tenant.organization, "colleague@acme.example")
    with pytest.raises(ServiceError, match="already a member of Acme Vision") as caught:
        invitation_create(
            organization=tenant.organization,
            actor=tenant.user,
            email="Colleague@acme.example",
            role=Role.MEMBER,
            site_url=SITE,
        )
    assert caught.value.field == "email" and caught.value.status_code == 409


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("not-an-email", "valid email"),
        ("", "valid email"),
        (None, "as text"),
        (5, "as text"),
        (["a@b.example"], "as text"),
        ("x" * 250 + "@example.com", "too long"),
    ],
)
def test_it_refuses_bad_emails_saying_why(tenant, email, message):
    with pytest.raises(ServiceError, match=message) as caught:
        invitation_create(
            organization=tenant.organization,
            actor=tenant.user,
            email=email,
            role=Role.MEMBER,
            site_url=SITE,
        )
    assert caught.value.field == "email"
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("role", ["boss", "", None, 3, ["admin"]])
def test_it_refuses_unknown_roles(tenant, role):
    with pytest.raises(ServiceError, match="Choose a role") as caught:
        invitation_create(
            organization=tenant.organization,
            actor=tenant.user,
            email="a@b.example",
            role=role,
            site_url=SITE,
        )
    assert caught.value.field == "role"


def test_members_cannot_invite_and_admins_cannot_invite_owners(tenant):
    member = add_member(tenant.organization, "member@acme.example").user
    admin = add_member(tenant.organization, "admin@acme.example", Role.ADMIN).user
    with pytest.raises(ServiceError, match="Only an owner or an admin") as caught:
        invitation_create(
            organization=tenant.organization, actor=member, email="x@y.example", role="member",
            site_url=SITE,
        )  # fmt: skip
    assert caught.value.status_code == 403
    with pytest.raises(ServiceError, match="Only an owner can invite an owner"):
        invitation_create(
            organization=tenant.organization, actor=admin, email="x@y.example", role="owner",
            site_url=SITE,
        )  # fmt: skip
    invitation_create(
        organization=tenant.organization, actor=admin, email="x@y.example", role="admin",
        site_url=SITE,
    )  # fmt: skip


def test_an_outsider_cannot_invite_into_another_organization(tenant, outsider):
    with pytest.raises(ServiceError, match="Only an owner or an admin") as caught:
        invitation_create(
            organization=tenant.organization,
            actor=outsider.user,
            email="x@y.example",
            role="member",
            site_url=SITE,
        )
    assert caught.value.status_code == 403


def test_an_existing_user_logged_in_as_the_invited_address_joins_with_the_role(
    tenant, outsider, invite
):
    _invitation, token = invite(outsider.user.email, Role.ADMIN)
    membership = invitation_accept(token=token, user=outsider.user)

    assert membership.organization == tenant.organization
    assert membership.role == Role.ADMIN
    invitation = Invitation.objects.get(pk=_invitation.pk)
    assert invitation.accepted_by == outsider.user and invitation.accepted_at is not None
    # Their own organization stays theirs.
    assert Membership.objects.filter(user=outsider.user).count() == 2
    assert AuditEvent.all_tenants.filter(
        organization=tenant.organization, action="invitation.accept"
    ).exists()


def test_the_link_works_once(tenant, outsider, invite):
    _invitation, token = invite(outsider.user.email)
    invitation_accept(token=token, user=outsider.user)
    with pytest.raises(ServiceError, match="already used") as caught:
        invitation_accept(token=token, user=outsider.user)
    assert caught.value.status_code == 410


def test_it_refuses_another_account_naming_the_invited_address(tenant, outsider, invite):
    _invitation, token = invite("someone.else@example.com")
    with pytest.raises(ServiceError, match="This invitation is for someone.else@example.com"):
        invitation_accept(token=token, user=outsider.user)
    assert not Membership.objects.filter(
        organization=tenant.organization, user=outsider.user
    ).exists()


def test_an_expired_link_is_refused(tenant, outsider, invite):
    invitation, token = invite(outsider.user.email)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(ServiceError, match="has expired. Ask owner@acme.example to send it again"):
        invitation_accept(token=token, user=outsider.user)


def test_a_revoked_link_is_refused(tenant, outsider, invite):
    invitation, token = invite(outsider.user.email)
    invitation_revoke(organization=tenant.organization, actor=tenant.user, invitation=invitation)
    with pytest.raises(ServiceError, match="was revoked"):
        invitation_accept(token=token, user=outsider.user)
    with pytest.raises(ServiceError, match="was revoked") as caught:
        invitation_revoke(
            organization=tenant.organization, actor=tenant.user, invitation=invitation
        )
    assert caught.value.status_code == 409


def test_an_unknown_link_is_refused(tenant, outsider):
    with pytest.raises(ServiceError, match="not valid") as caught:
        invitation_accept(token="made-up-token", user=outsider.user)
    assert caught.value.status_code == 404


def test_resend_gives_a_new_link_and_expiry_and_kills_the_old_one(
    tenant, outsider, invite, django_capture_on_commit_callbacks
):
    invitation, old_token = invite(outsider.user.email)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    invitation.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        resent = invitation_resend(
            organization=tenant.organization,
            actor=tenant.user,
            invitation=invitation,
            site_url=SITE,
        )
    new_token = token_of(last_link(outsider.user.email))
    assert resent.expires_at > timezone.now() + timedelta(days=6)
    with pytest.raises(ServiceError, match="not valid"):
        invitation_accept(token=old_token, user=outsider.user)
    assert invitation_accept(token=new_token, user=outsider.user).role == Role.MEMBER


def test_a_new_person_signs_up_through_the_link_without_an_organization_of_their_own(
    tenant, invite
):
    _invitation, token = invite("newcomer@example.com", Role.ADMIN)
    user, membership = invitation_signup(token=token, password="A-long-enough-pass-42")

    assert user.email == "newcomer@example.com"
    assert user.check_password("A-long-enough-pass-42")
    assert list(Membership.objects.filter(user=user)) == [membership]
    assert membership.organization == tenant.organization and membership.role == Role.ADMIN


def test_signup_through_the_link_checks_the_password_and_an_existing_account(
    tenant, outsider, invite
):
    _invitation, token = invite("weak@example.com")
    with pytest.raises(ServiceError) as caught:
        invitation_signup(token=token, password="123")
    assert caught.value.field == "password"
    assert not User.objects.filter(email="weak@example.com").exists()
    _invitation, token = invite(outsider.user.email)
    with pytest.raises(ServiceError, match="already exists. Log in"):
        invitation_signup(token=token, password="A-long-enough-pass-42")


# --- members: services --------------------------------------------------------------------


def test_the_last_owner_cannot_be_demoted_removed_or_leave(tenant):
    owner = owner_membership(tenant)
    with pytest.raises(ServiceError, match="last owner of Acme Vision") as caught:
        member_role_change(
            organization=tenant.organization, actor=tenant.user, membership=owner, role="admin"
        )
    assert caught.value.status_code == 400 and caught.value.code == "last_owner"
    with pytest.raises(ServiceError, match="last owner"):
        member_remove(organization=tenant.organization, actor=tenant.user, membership=owner)
    with pytest.raises(ServiceError, match="last owner"):
        member_leave(organization=tenant.organization, user=tenant.user)
    assert Membership.objects.get(pk=owner.pk).role == Role.OWNER


def test_with_a_second_owner_the_first_can_step_down(tenant):
    second = add_member(tenant.organization, "second@acme.example", Role.MEMBER)
    member_role_change(
        organization=tenant.organization, actor=tenant.user, membership=second, role="owner"
    )
    member_role_change(
        organization=tenant.organization,
        actor=second.user,
        membership=owner_membership(tenant),
        role="member",
    )
    assert owner_membership(tenant).role == Role.MEMBER
    events = AuditEvent.all_tenants.filter(action="member.role_change").values_list(
        "data", flat=True
    )
    assert {"email": "owner@acme.example", "from": "owner", "to": "member"} in list(events)


def test_an_admin_cannot_make_or_touch_an_owner(tenant):
    admin = add_member(tenant.organization, "admin@acme.example", Role.ADMIN)
    member = add_member(tenant.organization, "member@acme.example")
    owner = owner_membership(tenant)
    for call in (
        lambda: member_role_change(
            organization=tenant.organization, actor=admin.user, membership=member, role="owner"
        ),
        lambda: member_role_change(
            organization=tenant.organization, actor=admin.user, membership=owner, role="member"
        ),
        lambda: member_remove(organization=tenant.organization, actor=admin.user, membership=owner),
    ):
        with pytest.raises(ServiceError, match="Only an owner") as caught:
            call()
        assert caught.value.status_code == 403
    # Everything else an admin may do.
    member_role_change(
        organization=tenant.organization, actor=admin.user, membership=member, role="admin"
    )
    member_remove(organization=tenant.organization, actor=admin.user, membership=member)
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_a_member_cannot_change_roles_or_remove_anyone(tenant):
    member = add_member(tenant.organization, "member@acme.example")
    other = add_member(tenant.organization, "other@acme.example")
    with pytest.raises(ServiceError, match="Only an owner or an admin"):
        member_role_change(
            organization=tenant.organization, actor=member.user, membership=member, role="admin"
        )
    with pytest.raises(ServiceError, match="Only an owner or an admin"):
        member_remove(organization=tenant.organization, actor=member.user, membership=other)


def test_removing_or_leaving_revokes_the_members_api_keys(tenant):
    from apps.accounts.services import api_key_create

    member = add_member(tenant.organization, "member@acme.example")
    key, _raw = api_key_create(organization=tenant.organization, user=member.user, name="k")
    member_remove(organization=tenant.organization, actor=tenant.user, membership=member)
    assert ApiKey.all_tenants.get(pk=key.pk).revoked_at is not None
    assert ApiKey.all_tenants.get(pk=tenant.api_key.pk).revoked_at is None

    leaver = add_member(tenant.organization, "leaver@acme.example", Role.ADMIN)
    key, _raw = api_key_create(organization=tenant.organization, user=leaver.user, name="k")
    member_leave(organization=tenant.organization, user=leaver.user)
    assert ApiKey.all_tenants.get(pk=key.pk).revoked_at is not None
    assert AuditEvent.all_tenants.filter(action="member.leave", actor=leaver.user).exists()


# --- pages --------------------------------------------------------------------------------


def test_the_members_page_lists_members_and_invitations_for_an_owner(
    client, tenant, outsider, invite
):
    add_member(tenant.organization, "colleague@acme.example", Role.ADMIN)
    invite("pending@example.com")
    add_member(outsider.organization, "spy@rival.example")
    client.force_login(tenant.user)
    page = client.get("/organization/members/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "colleague@acme.example" in html and "pending@example.com" in html
    assert "spy@rival.example" not in html and "owner@rival.example" not in html
    assert 'name="email"' in html and "Send invitation" in html


def test_a_member_sees_the_list_read_only(client, tenant, invite):
    member = add_member(tenant.organization, "member@acme.example")
    invite("pending@example.com")
    client.force_login(member.user)
    html = client.get("/organization/members/").content.decode()
    assert "owner@acme.example" in html
    assert "Send invitation" not in html and "Change role" not in html
    assert "pending@example.com" not in html
    assert "Leave organization" in html


def test_inviting_on_the_page_sends_the_email(client, tenant, django_capture_on_commit_callbacks):
    client.force_login(tenant.user)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            "/organization/members/invite/", {"email": "page@example.com", "role": "admin"}
        )
    assert r.status_code == 302
    assert last_link("page@example.com").startswith("http://testserver/invitations/")
    assert Invitation.objects.get(email="page@example.com").role == Role.ADMIN


def test_a_bad_invitation_on_the_page_answers_400_keeping_what_was_typed(client, tenant):
    client.force_login(tenant.user)
    r = client.post("/organization/members/invite/", {"email": "nope", "role": "member"})
    assert r.status_code == 400
    html = r.content.decode()
    assert "valid email" in html and 'value="nope"' in html


def test_an_outsiders_member_and_invitation_ids_answer_404_on_the_pages(
    client, tenant, outsider, invite
):
    member = add_member(tenant.organization, "member@acme.example")
    invitation, _token = invite("pending@example.com")
    client.force_login(outsider.user)
    for url, data in (
        (f"/organization/members/{member.pk}/role/", {"role": "admin"}),
        (f"/organization/members/{member.pk}/remove/", {}),
        (f"/organization/invitations/{invitation.pk}/resend/", {}),
        (f"/organization/invitations/{invitation.pk}/revoke/", {}),
    ):
        assert client.post(url, data).status_code == 404, url
    assert Membership.objects.get(pk=member.pk).role == Role.MEMBER
    assert Invitation.objects.get(pk=invitation.pk).is_pending


def test_role_change_remove_resend_revoke_and_leave_on_the_pages(
    client, tenant, invite, django_capture_on_commit_callbacks
):
    member = add_member(tenant.organization, "member@acme.example")
    invitation, _token = invite("pending@example.com")
    client.force_login(tenant.user)
    r = client.post(f"/organization/members/{member.pk}/role/", {"role": "admin"}, follow=True)
    assert "member@acme.example is now Admin." in r.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/organization/invitations/{invitation.pk}/resend/")
    assert len([m for m in mail.outbox if "pending@example.com" in m.to]) == 2
    client.post(f"/organization/invitations/{invitation.pk}/revoke/")
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is not None
    client.post(f"/organization/members/{member.pk}/remove/")
    assert not Membership.objects.filter(pk=member.pk).exists()
    r = client.post("/organization/members/leave/", follow=True)
    assert "last owner" in r.content.decode()
    assert owner_membership(tenant)


def test_the_accept_page_lets_a_new_person_sign_up_and_join(client, tenant, invite):
    _invitation, token = invite("fresh@example.com", Role.ADMIN)
    page = client.get(f"/invitations/{token}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Join Acme Vision" in html and 'value="fresh@example.com" readonly' in html
    r = client.post(
        f"/invitations/{token}/",
        {"password": "A-long-enough-pass-42", "email": "attacker@evil.example"},
    )
    assert r.status_code == 302
    user = User.objects.get(email="fresh@example.com")
    assert not User.objects.filter(email="attacker@evil.example").exists()
    assert Membership.objects.get(user=user).organization == tenant.organization
    home = client.get("/")
    assert home.status_code == 200 and "Acme Vision" in home.content.decode()


def test_the_accept_page_for_a_logged_in_user_of_the_invited_address_joins(
    client, tenant, outsider, invite
):
    _invitation, token = invite(outsider.user.email)
    client.force_login(outsider.user)
    assert "Join Acme Vision" in client.get(f"/invitations/{token}/").content.decode()
    r = client.post(f"/invitations/{token}/")
    assert r.status_code == 302
    # They land in the organization they joined, not in their own.
    assert "Acme Vision" in client.get("/").content.decode()


def test_the_accept_page_logged_out_with_an_existing_account_sends_to_log_in(
    client, tenant, outsider, invite
):
    _invitation, token = invite(outsider.user.email)
    html = client.get(f"/invitations/{token}/").content.decode()
    assert f"/accounts/login/?next=/invitations/{token}/" in html
    r = client.post(f"/invitations/{token}/", {"password": "A-long-enough-pass-42"})
    assert r.status_code == 409
    assert "already exists" in r.content.decode()


def test_the_accept_page_tells_another_account_which_address_it_is_for(
    client, tenant, outsider, invite
):
    _invitation, token = invite("someone@example.com")
    client.force_login(outsider.user)
    html = client.get(f"/invitations/{token}/").content.decode()
    assert "This invitation is for someone@example.com" in html
    r = client.post(f"/invitations/{token}/")
    assert r.status_code == 403
    assert not Membership.objects.filter(organization=tenant.organization, user=outsider.user)


def test_the_accept_page_explains_unusable_links(client, tenant, outsider, invite):
    assert client.get("/invitations/not-a-real-token/").status_code == 404
    invitation, token = invite(outsider.user.email)
    invitation_revoke(organization=tenant.organization, actor=tenant.user, invitation=invitation)
    r = client.get(f"/invitations/{token}/")
    assert r.status_code == 410 and "was revoked" in r.content.decode()
    assert client.get(f"/invitations/{'x' * 5000}/").status_code == 404


# --- API ----------------------------------------------------------------------------------


def test_the_api_lists_members_of_the_callers_organization_only(client, tenant, outsider):
    add_member(tenant.organization, "colleague@acme.example", Role.ADMIN)
    r = client.get(MEMBERS_API, **basic(tenant.user))
    assert r.status_code == 200
    emails = {row["email"]: row["role"] for row in r.json()["results"]}
    assert emails == {"owner@acme.example": "owner", "colleague@acme.example": "admin"}


def test_the_api_changes_a_role_and_removes_a_member(client, tenant):
    member = add_member(tenant.organization, "member@acme.example")
    r = client.patch(
        f"{MEMBERS_API}{member.pk}/",
        {"role": "admin"},
        content_type="application/json",
        **basic(tenant.user),
    )
    assert r.status_code == 200, r.content
    assert r.json()["role"] == "admin"
    assert client.delete(f"{MEMBERS_API}{member.pk}/", **basic(tenant.user)).status_code == 204
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_the_api_refuses_the_last_owner_and_admins_on_owners(client, tenant):
    owner = owner_membership(tenant)
    r = client.delete(f"{MEMBERS_API}{owner.pk}/", **basic(tenant.user))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "last_owner"
    admin = add_member(tenant.organization, "admin@acme.example", Role.ADMIN)
    r = client.patch(
        f"{MEMBERS_API}{owner.pk}/",
        {"role": "member"},
        content_type="application/json",
        **basic(admin.user),
    )
    assert r.status_code == 403
    assert "Only an owner" in r.json()["error"]["message"]


def test_the_api_answers_404_for_another_organizations_members_and_invitations(
    client, tenant, outsider, invite
):
    member = add_member(tenant.organization, "member@acme.example")
    invitation, _token = invite("pending@example.com")
    auth = basic(outsider.user)
    body = {"data": {"role": "owner"}, "content_type": "application/json"}
    assert client.get(f"{MEMBERS_API}{member.pk}/", **auth).status_code == 404
    assert client.patch(f"{MEMBERS_API}{member.pk}/", **body, **auth).status_code == 404
    assert client.delete(f"{MEMBERS_API}{member.pk}/", **auth).status_code == 404
    assert client.get(f"{INVITATIONS_API}{invitation.pk}/", **auth).status_code == 404
    assert client.delete(f"{INVITATIONS_API}{invitation.pk}/", **auth).status_code == 404
    r = client.post(f"{INVITATIONS_API}{invitation.pk}/resend/", **auth)
    assert r.status_code == 404
    assert client.get(INVITATIONS_API, **auth).json()["results"] == []
    assert Membership.objects.get(pk=member.pk).role == Role.MEMBER
    assert Invitation.objects.get(pk=invitation.pk).is_pending


def test_the_api_invites_resends_and_revokes(client, tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            INVITATIONS_API,
            {"email": "api@example.com", "role": "admin"},
            content_type="application/json",
            **basic(tenant.user),
        )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["email"] == "api@example.com" and body["status"] == "pending"
    assert body["invited_by"] == "owner@acme.example"
    assert "token" not in json.dumps(body)
    first = last_link("api@example.com")
    listed = client.get(INVITATIONS_API, **basic(tenant.user)).json()["results"]
    assert [row["id"] for row in listed] == [body["id"]]
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(f"{INVITATIONS_API}{body['id']}/resend/", **basic(tenant.user))
    assert r.status_code == 200
    assert last_link("api@example.com") != first
    r = client.delete(f"{INVITATIONS_API}{body['id']}/", **basic(tenant.user))
    assert r.status_code == 204
    assert Invitation.objects.get(pk=body["id"]).revoked_at is not None
    assert client.get(INVITATIONS_API, **basic(tenant.user)).json()["results"] == []


def test_api_keys_cannot_manage_members_or_invitations(client, tenant):
    member = add_member(tenant.organization, "member@acme.example")
    for method, url, data in (
        ("get", MEMBERS_API, None),
        ("patch", f"{MEMBERS_API}{member.pk}/", {"role": "admin"}),
        ("delete", f"{MEMBERS_API}{member.pk}/", None),
        ("get", INVITATIONS_API, None),
        ("post", INVITATIONS_API, {"email": "x@y.example"}),
    ):
        kwargs = {"data": data, "content_type": "application/json"} if data else {}
        r = getattr(client, method)(url, **kwargs, **tenant.auth)
        assert r.status_code == 403, (method, url)
        assert r.json()["error"]["message"].startswith("API keys cannot manage members")
    assert Membership.objects.get(pk=member.pk).role == Role.MEMBER
    assert not Invitation.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "[1, 2]",
        '"x"',
        "5",
        "null",
        json.dumps({"email": 5}),
        json.dumps({"email": ["a@b.example"]}),
        json.dumps({"email": {"x": 1}}),
        json.dumps({"email": "a@b.example", "role": ["admin"]}),
        json.dumps({"email": "a@b.example", "role": None}),
        json.dumps({"email": "x" * 300 + "@example.com"}),
        json.dumps({"email": "bad\u0000@example.com"}),
        json.dumps({"email": "a@b.example", "role": "ad\u0000min"}),
    ],
)
def test_the_api_refuses_malformed_invitations_with_400(client, tenant, body):
    r = client.post(INVITATIONS_API, body, content_type="application/json", **basic(tenant.user))
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] and error["message"]
    assert not Invitation.objects.exists()


@pytest.mark.parametrize(
    "body", ["[1]", json.dumps({"role": 5}), json.dumps({"role": "boss"}), json.dumps({})]
)
def test_the_api_refuses_malformed_role_changes_with_400(client, tenant, body):
    member = add_member(tenant.organization, "member@acme.example")
    r = client.patch(
        f"{MEMBERS_API}{member.pk}/", body, content_type="application/json", **basic(tenant.user)
    )
    assert r.status_code == 400, r.content
    assert Membership.objects.get(pk=member.pk).role == Role.MEMBER


def test_a_member_can_read_the_list_but_not_invite_over_the_api(client, tenant):
    member = add_member(tenant.organization, "member@acme.example")
    assert client.get(MEMBERS_API, **basic(member.user)).status_code == 200
    r = client.post(
        INVITATIONS_API,
        {"email": "x@y.example"},
        content_type="application/json",
        **basic(member.user),
    )
    assert r.status_code == 403
    assert "This needs the admin role; you are member." == r.json()["error"]["message"]
