from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


def _duration(minutes: int) -> str:
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins:02d}m"
    return f"{mins}m"


@register.simple_tag
def sla_badge(exception, now=None):
    """The countdown badge: ok, warning, breached (or paused while waiting, closed once done)."""
    now = now or timezone.now()
    state = exception.sla_state(now)
    if state == "closed":
        return format_html('<span class="badge sla-closed">{}</span>', exception.get_status_display())
    if state == "paused":
        return mark_safe('<span class="badge sla-paused" title="Clock paused while waiting">paused</span>')
    minutes = int(abs((exception.due_at - now).total_seconds()) // 60)
    text = f"{_duration(minutes)} overdue" if state == "breached" else f"due in {_duration(minutes)}"
    return format_html(
        '<span class="badge sla-{}" title="Due {}">{}</span>',
        state,
        timezone.localtime(exception.due_at).strftime("%d %b %H:%M"),
        text,
    )


@register.filter
def age(moment, now=None):
    """How long ago, short: "3d 4h", "25m"."""
    if not moment:
        return ""
    now = now or timezone.now()
    return _duration(max(0, int((now - moment).total_seconds() // 60)))
