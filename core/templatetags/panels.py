from django import template
from django.utils.safestring import SafeString, mark_safe

from core import panels as registry

register = template.Library()


@register.simple_tag(takes_context=True, name="panels")
def panels_tag(context, slot: str, obj) -> SafeString:
    """`{% panels "order" order %}`: what the apps registered for that slot render for `obj`."""
    return mark_safe("".join(registry.render(slot, context["request"], obj)))
