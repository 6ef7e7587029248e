"""P1–P4, of exceptions and of orders alike."""

from django.db import models


class Priority(models.TextChoices):
    P1 = "P1", "P1 — critical"
    P2 = "P2", "P2 — high"
    P3 = "P3", "P3 — normal"
    P4 = "P4", "P4 — low"

    def raised(self) -> "Priority":
        """One step more urgent, P1 staying P1 (an escalation)."""
        ladder = [Priority.P4, Priority.P3, Priority.P2, Priority.P1]
        return ladder[min(ladder.index(self) + 1, len(ladder) - 1)]
