"""Admin building blocks shared by the apps, and the business calendars."""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html_join

from .models import BusinessCalendar, Holiday, public_holiday_names


class ReadOnlyAdmin(admin.ModelAdmin):
    """For audit trails and state that only services change: listed and searched, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class HolidayInline(admin.TabularInline):
    """Days closed besides the country's public holidays: company days, stocktakes, local feasts."""

    model = Holiday
    extra = 1
    verbose_name = "added holiday"
    verbose_name_plural = "added holidays (besides the public holidays)"


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "timezone", "country", "subdivision"]
    list_filter = ["country"]
    search_fields = ["name"]
    fields = ["name", "timezone", "hours", "country", "subdivision", "public_holidays"]
    readonly_fields = ["public_holidays"]
    inlines = [HolidayInline]

    @admin.display(description="Public holidays this year and next")
    def public_holidays(self, calendar: BusinessCalendar) -> str:
        """What the country already closes, so nobody types those days in again below."""
        if not calendar.country:
            return "None until a country is chosen."
        year = timezone.localdate().year
        named = public_holiday_names(calendar.country, calendar.subdivision, [year, year + 1])
        if not named:
            return "None known for this country."
        return format_html_join("", "<div>{} {}</div>", ((day.strftime("%a %d %b %Y"), name) for day, name in named))
