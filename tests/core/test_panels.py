import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils.safestring import SafeString

from core import panels


@pytest.fixture
def slot():
    """A slot of the test's own, emptied afterwards, so the apps' real panels stay as they are."""
    name = "test-slot"
    yield name
    panels._providers.pop(name, None)


def test_providers_render_in_the_order_they_registered_and_none_or_empty_stays_out(slot):
    request = RequestFactory().get("/")
    panels.register(slot, lambda request, obj: f"<p>first {obj}</p>")
    panels.register(slot, lambda request, obj: None)
    panels.register(slot, lambda request, obj: "")
    panels.register(slot, lambda request, obj: f"<p>second {request.path}</p>")

    rendered = panels.render(slot, request, 7)

    assert rendered == ["<p>first 7</p>", "<p>second /</p>"]
    assert all(isinstance(html, SafeString) for html in rendered)


def test_registering_twice_renders_once_and_unregistering_removes_it(slot):
    def provider(request, obj):
        return "<p>once</p>"

    assert panels.register(slot, provider) is provider
    panels.register(slot, provider)
    assert panels.render(slot, None, None) == ["<p>once</p>"]

    panels.unregister(slot, provider)
    panels.unregister(slot, provider)
    assert panels.render(slot, None, None) == []


def test_a_slot_nobody_fills_renders_nothing():
    assert panels.render("nobody-fills-this", None, object()) == []


def test_the_template_tag_passes_the_request_and_object_and_does_not_escape_the_panels_html(slot):
    panels.register(slot, lambda request, obj: f"<section data-user='{request.user}'>{obj['name']}</section>")
    request = RequestFactory().get("/")
    request.user = "ada"

    html = Template("{% load panels %}<main>{% panels slot thing %}</main>").render(
        Context({"request": request, "slot": slot, "thing": {"name": "order 1"}})
    )

    assert html == "<main><section data-user='ada'>order 1</section></main>"
