"""The staff inbox app for Flask test-client tests: the enterprise_customer procedure deployed,
the demo users, and signed-in clients. Test modules import the fixtures they use."""

from __future__ import annotations

import re

import pytest

from complaintflow.web.app import create_app, load_roles
from complaintflow.web.users import DEMO_USERS, load_users
from conftest import PROCESSES

INTAKE = {"channel": "hotline", "complainant": "王女士", "contact": "13800000000", "category": "product_quality",
          "content": "新买的电水壶漏水", "promised_resolution_at": "2026-05-08T17:00:00+08:00"}


@pytest.fixture
def app(service):
    service.deploy([PROCESSES / "enterprise_customer.bpmn"])
    roles = load_roles(PROCESSES)
    return create_app(service, users=load_users(DEMO_USERS, set(roles)), roles=roles, secret_key="test", testing=True)


@pytest.fixture
def svc(app):
    return app.extensions["complaintflow"].service


@pytest.fixture
def as_user(app):
    def make(login):
        return sign_in(app.test_client(), login)
    return make


def token(client, path="/login"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, login, password="demo"):
    response = client.post("/login", data={"login": login, "password": password, "csrf_token": token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client
