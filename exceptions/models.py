"""Typed, owned, SLA-timed exceptions.

This app knows orders, lines and shipments only by string model references;
it never imports the orders app (DESIGN §3).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from core.priority import Priority


class Stage(models.TextChoices):
    INTAKE = "intake", "Intake"
    ALLOCATION = "allocation", "Allocation"
    WAREHOUSE = "warehouse", "Warehouse"
    SHIPPING = "shipping", "Shipping"
    FINANCIAL = "financial", "Financial"
    SYNC = "sync", "Sync"


class Category(models.TextChoices):
    BUSINESS_RULE = "business_rule", "Business rule"
    PHYSICAL = "physical", "Physical"
    INTEGRATION = "integration", "Integration"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Queue(models.Model):
    class Assignment(models.TextChoices):
        MANUAL = "manual", "Manual: people claim work"
        ROUND_ROBIN = "round_robin", "Round-robin among members present"
        LEAST_LOADED = "least_loaded", "Least loaded member present"

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    team = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="queues", help_text="The team that owns this queue.")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="exception_queues")
    assignment = models.CharField(max_length=16, choices=Assignment.choices, default=Assignment.MANUAL)
    last_assigned = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Round-robin cursor: the member who got the previous exception.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Presence(models.Model):
    """Whether a person is at work; automatic assignment skips people marked away."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presence")
    away = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user} {'away' if self.away else 'present'}"


class ExceptionType(models.Model):
    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    stage = models.CharField(max_length=16, choices=Stage.choices)
    category = models.CharField(max_length=16, choices=Category.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.MEDIUM)
    blocking = models.BooleanField(default=False, help_text="An open exception of this type holds its order.")
    default_queue = models.ForeignKey(Queue, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    allowed_actions = models.JSONField(
        default=list,
        blank=True,
        help_text="Codes of the resolution actions offered beyond claim, assign, comment, wait, resolve and dismiss.",
    )

    class Meta:
        ordering = ["stage", "code"]

    def __str__(self) -> str:
        return self.code


class SlaPolicy(models.Model):
    exception_type = models.ForeignKey(ExceptionType, on_delete=models.CASCADE, related_name="sla_policies")
    priority = models.CharField(max_length=2, choices=Priority.choices)
    first_response_minutes = models.PositiveIntegerField()
    resolve_minutes = models.PositiveIntegerField()
    warning_percent = models.PositiveSmallIntegerField(
        default=75, help_text="Warn when this share of the resolve time has passed."
    )
    pause_while_waiting = models.BooleanField(
        default=True, help_text="The clock stops while the exception waits on someone outside."
    )
    escalation_queue = models.ForeignKey(Queue, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    calendar = models.ForeignKey(
        "core.BusinessCalendar",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="Empty: the clock runs around the clock.",
    )

    class Meta:
        ordering = ["exception_type__code", "priority"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(fields=["exception_type", "priority"], name="sla_policy_unique_type_priority"),
            models.CheckConstraint(
                condition=Q(resolve_minutes__gte=1) & Q(first_response_minutes__gte=1), name="sla_policy_minutes_positive"
            ),
            models.CheckConstraint(
                condition=Q(warning_percent__gte=1) & Q(warning_percent__lte=99), name="sla_policy_warning_percent_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exception_type_id}/{self.priority}"


class ExceptionStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    WAITING = "waiting", "Waiting"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


ES = ExceptionStatus
OPEN_STATUSES = [ES.OPEN, ES.IN_PROGRESS, ES.WAITING]
CLOSED_STATUSES = [ES.RESOLVED, ES.DISMISSED]


class FulfillmentException(ConcurrentTransitionMixin, models.Model):
    type = models.ForeignKey(ExceptionType, on_delete=models.PROTECT, related_name="exceptions")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="exceptions")
    line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, null=True, blank=True, related_name="exceptions")
    shipment = models.ForeignKey("orders.Shipment", on_delete=models.PROTECT, null=True, blank=True, related_name="exceptions")
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, null=True, blank=True, related_name="exceptions")
    sku = models.ForeignKey("inventory.Sku", on_delete=models.PROTECT, null=True, blank=True, related_name="exceptions")
    source_system = models.CharField(max_length=32, default="portal")
    dedupe_key = models.CharField(max_length=200, help_text="What makes two raises the same problem (order, line, ...).")
    summary = models.CharField(max_length=300)
    detail = models.JSONField(default=dict, blank=True)
    status = FSMField(max_length=16, choices=ExceptionStatus.choices, default=ES.OPEN, protected=True, db_index=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="owned_exceptions"
    )
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="exceptions")
    priority = models.CharField(max_length=2, choices=Priority.choices, db_index=True)
    sla_policy = models.ForeignKey(SlaPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    detected_at = models.DateTimeField(default=timezone.now)
    first_response_due_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    warn_at = models.DateTimeField()
    due_at = models.DateTimeField(db_index=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    escalated = models.BooleanField(default=False)
    escalated_at = models.DateTimeField(null=True, blank=True)
    waiting_since = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_action = models.CharField(max_length=32, blank=True)
    resolution_note = models.TextField(blank=True)
    root_cause = models.CharField(max_length=200, blank=True)
    operator_minutes = models.PositiveIntegerField(default=0)
    occurrences = models.PositiveIntegerField(default=1)
    last_occurred_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = "exception"
        constraints = [
            # At most one open exception per problem; raising it again counts an occurrence.
            models.UniqueConstraint(
                fields=["type", "dedupe_key"], condition=Q(status__in=OPEN_STATUSES), name="exception_one_open_per_problem"
            ),
        ]
        indexes = [
            models.Index(fields=["queue", "status", "due_at"], name="exception_queue_status_due"),
            # The queue pages read only open rows; closed history would otherwise be walked past on every page.
            models.Index(fields=["due_at", "id"], condition=Q(status__in=OPEN_STATUSES), name="exception_open_due"),
            models.Index(
                fields=["queue", "due_at", "id"], condition=Q(status__in=OPEN_STATUSES), name="exception_open_queue_due"
            ),
            models.Index(
                fields=["owner", "due_at", "id"], condition=Q(status__in=OPEN_STATUSES), name="exception_open_owner_due"
            ),
            models.Index(
                fields=["location", "due_at", "id"], condition=Q(status__in=OPEN_STATUSES), name="exception_open_location_due"
            ),
            models.Index(fields=["created_at", "id"], condition=Q(status__in=OPEN_STATUSES), name="exception_open_created"),
            # The admin's list of every exception, newest first, and its date ranges. Words of the summary have a
            # trigram index on PostgreSQL (migration 0011).
            models.Index(fields=["created_at", "id"], name="exception_created"),
            models.Index(
                fields=["priority", "due_at", "id"], condition=Q(status__in=OPEN_STATUSES), name="exception_open_priority_due"
            ),
            # The SLA sweep's "due" questions read only rows still waiting for their warning or escalation, so a
            # run with nothing due touches next to nothing however long the history. Running clocks (open, in
            # progress) and waiting ones (running only under a policy that does not pause) are indexed apart, so
            # the rows a paused clock leaves past their times are never read. due_at is in the warning index so
            # that rows that breached without a warning are passed over in the index, not fetched.
            models.Index(
                fields=["warn_at", "due_at"],
                condition=Q(status__in=["open", "in_progress"], warned_at__isnull=True),
                name="exception_sla_warning_due",
            ),
            models.Index(
                fields=["due_at"],
                condition=Q(status__in=["open", "in_progress"], escalated=False),
                name="exception_sla_escalation_due",
            ),
            models.Index(
                fields=["sla_policy", "warn_at", "due_at"],
                condition=Q(status="waiting", warned_at__isnull=True),
                name="exception_sla_wait_warning",
            ),
            models.Index(
                fields=["sla_policy", "due_at"],
                condition=Q(status="waiting", escalated=False),
                name="exception_sla_wait_escalation",
            ),
        ]
        permissions = [
            ("work_exception", "Can claim, comment on, wait on and resolve exceptions"),
            ("assign_exception", "Can assign exceptions to others"),
            ("dismiss_exception", "Can dismiss exceptions"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.type_id} {self.summary}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def sla_state(self, now=None) -> str:
        """ok, warning or breached, as the countdown badge shows it."""
        if not self.is_open:
            return "closed"
        now = now or timezone.now()
        if self.status == ES.WAITING and self.waiting_since and self.sla_policy and self.sla_policy.pause_while_waiting:
            return "paused"
        if now >= self.due_at:
            return "breached"
        if now >= self.warn_at:
            return "warning"
        return "ok"

    @transition(field=status, source=[ES.OPEN, ES.IN_PROGRESS], target=ES.IN_PROGRESS, custom={"label": "Start work"})
    def start_work(self) -> None:
        pass

    @transition(field=status, source=[ES.OPEN, ES.IN_PROGRESS], target=ES.WAITING, custom={"label": "Wait"})
    def wait(self, *, now) -> None:
        self.waiting_since = now

    @transition(field=status, source=ES.WAITING, target=ES.IN_PROGRESS, custom={"label": "Resume"})
    def resume(self) -> None:
        self.waiting_since = None

    @transition(field=status, source=OPEN_STATUSES, target=ES.RESOLVED, custom={"label": "Resolve"})
    def resolve(self, *, action: str, note: str, root_cause: str, now) -> None:
        self.resolution_action, self.resolution_note, self.root_cause = action, note, root_cause
        self.resolved_at, self.waiting_since = now, None

    @transition(field=status, source=OPEN_STATUSES, target=ES.DISMISSED, custom={"label": "Dismiss"})
    def dismiss(self, *, reason: str, now) -> None:
        self.resolution_action, self.resolution_note = "dismiss", reason
        self.resolved_at, self.waiting_since = now, None

    @transition(field=status, source=CLOSED_STATUSES, target=ES.OPEN, custom={"label": "Reopen"})
    def reopen(self) -> None:
        self.resolved_at = None
        self.resolution_action = ""


class RootCause(models.Model):
    """What a person says caused an exception when they resolve it: a short list the ops admins keep."""

    name = models.CharField(max_length=60, unique=True)
    description = models.CharField(max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=100, help_text="Lower comes first in the list.")
    active = models.BooleanField(default=True, help_text="Offered when resolving; past exceptions keep theirs.")

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class SavedView(models.Model):
    """A person's named queue view: the tab, filters, search and sort as the query string of the queue page."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=60)
    query = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="saved_view_unique_name_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.name}"


class ExceptionEvent(models.Model):
    """Append-only audit trail of an exception."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        OCCURRED = "occurred", "Occurred again"
        ASSIGNED = "assigned", "Assigned"
        CLAIMED = "claimed", "Claimed"
        COMMENTED = "commented", "Commented"
        STATUS_CHANGED = "status_changed", "Status changed"
        ACTION = "action", "Action taken"
        ESCALATED = "escalated", "Escalated"
        SLA_WARNED = "sla_warned", "SLA warning"
        SLA_BREACHED = "sla_breached", "SLA breached"

    exception = models.ForeignKey(FulfillmentException, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    action = models.CharField(max_length=32, blank=True)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    actor = models.CharField(max_length=150)
    note = models.TextField(blank=True)
    operator_minutes = models.PositiveIntegerField(default=0)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"#{self.exception_id} {self.kind} by {self.actor}"
