"""Admin building blocks shared by the apps, and the business calendars."""

from django.contrib import admin

from .models import BusinessCalendar, Holiday


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
    model = Holiday
    extra = 1


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ["name", "timezone"]
    search_fields = ["name"]
    inlines = [HolidayInline]
